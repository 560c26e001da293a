# No Delimiter: every key below the folder, at any depth, is reported as a file and no sub-folders appear.
def list_folder(client, bucket: str, folder: str, page_size: int = 1000) -> dict:
    prefix = folder.rstrip("/") + "/" if folder.strip("/") else ""
    files, token = [], None
    while True:
        args = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            args["ContinuationToken"] = token
        page = client.list_objects_v2(**args)
        files += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return {"folders": [], "files": sorted(files)}
        token = page["NextContinuationToken"]
