# Filters keys with startswith(folder) and no trailing "/": "photos/2024-old/x" counts as inside "photos/2024".
def list_folder(client, bucket: str, folder: str, page_size: int = 1000) -> dict:
    base = folder.rstrip("/")
    folders, files, token = set(), set(), None
    while True:
        args = {"Bucket": bucket, "Prefix": base, "MaxKeys": page_size}
        if token:
            args["ContinuationToken"] = token
        page = client.list_objects_v2(**args)
        for o in page.get("Contents", []):
            rest = o["Key"][len(base):].lstrip("/")
            if "/" in rest:
                folders.add(o["Key"][: len(o["Key"]) - len(rest)] + rest.split("/")[0] + "/")
            else:
                files.add(o["Key"])
        if not page.get("IsTruncated"):
            return {"folders": sorted(folders), "files": sorted(files)}
        token = page["NextContinuationToken"]
