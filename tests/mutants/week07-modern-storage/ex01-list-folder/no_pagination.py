# No pagination: one ListObjectsV2 request, so a folder with more than page_size entries is cut short.
def list_folder(client, bucket: str, folder: str, page_size: int = 1000) -> dict:
    prefix = folder.rstrip("/") + "/" if folder.strip("/") else ""
    page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/", MaxKeys=page_size)
    return {"folders": sorted(p["Prefix"] for p in page.get("CommonPrefixes", [])),
            "files": sorted(o["Key"] for o in page.get("Contents", []))}
