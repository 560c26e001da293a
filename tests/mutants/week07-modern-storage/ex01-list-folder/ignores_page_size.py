# Paginates, but never passes MaxKeys=page_size, so every request asks for the default 1000 entries.
def list_folder(client, bucket: str, folder: str, page_size: int = 1000) -> dict:
    prefix = folder.rstrip("/") + "/" if folder.strip("/") else ""
    folders, files, token = [], [], None
    while True:
        args = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
        if token:
            args["ContinuationToken"] = token
        page = client.list_objects_v2(**args)
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        files += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return {"folders": sorted(folders), "files": sorted(files)}
        token = page["NextContinuationToken"]
