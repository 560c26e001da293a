# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Week 7-8: Modern Storage
#
# **Guide:** Phase 1, 1.2 Week 7-8 (Object Storage & S3 Basics, File Systems, Backup & Restore,
# Bloom Filters) and the practical exercises "deploy MinIO (S3-compatible storage)", "implement
# backup strategies with different RTO/RPO requirements" and "build a simple bloom filter".
#
# **Time:** about 4 hours (2 h reading and running, 2 h exercises).
#
# **Points:** 26 (four autograded exercises, 22 points; one written answer, 4 points).
#
# **Prerequisites:** week 1-4 (SQL, PostgreSQL, the write-ahead log); Python classes, dictionaries
# and `random.Random`; no cloud account needed.
#
# **Reading:** Ghemawat, Gobioff, Leung, "The Google File System" (SOSP 2003), sections 2-4;
# Amazon S3 User Guide, "Amazon S3 data consistency model", "Uploading and copying objects using
# multipart upload", "Using versioning"; PostgreSQL manual, ch. 25 "Backup and Restore"
# (continuous archiving and point-in-time recovery); Kirsch and Mitzenmacher, "Less Hashing,
# Same Performance: Building a Better Bloom Filter" (2006).
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works). An
# S3 server and a PostgreSQL server start inside this kernel on 127.0.0.1; nothing reaches the
# internet. Write your answers where a cell says `YOUR CODE HERE`, then run the test cell below
# it (more tests run when your work is graded). Reruns give the same data and answers; timings
# differ a little. Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. use the S3 API on a real server: buckets, keys and prefixes, listing "folders" with a
#    delimiter and pagination, multipart upload and its ETag, versioning, presigned URLs and
#    conditional writes, and say what S3 guarantees about consistency (today and before 2020);
# 2. tell block, file and object storage apart, and model a GFS/HDFS-style file system: place
#    chunk replicas, lose servers, count the chunks at risk and re-replicate them;
# 3. take a logical and a physical full backup, an incremental backup and a real point-in-time
#    recovery from archived WAL with PostgreSQL, and choose the cheapest backup schedule that
#    meets a recovery point objective (RPO) and a recovery time objective (RTO);
# 4. implement a Bloom filter with double hashing, and check its measured false-positive rate
#    against p = (1 - e^(-kn/m))^k.

# %% [markdown]
# ### Set-up
#
# MinIO, the guide's S3-compatible server, is a Go binary that cannot be installed from a Python
# package, and this course runs offline. **moto's S3-compatible server stands in for it**: it
# implements the S3 REST API and answers real HTTP requests on 127.0.0.1, and `boto3` (the AWS
# SDK for Python) talks to it exactly as it talks to AWS or MinIO. `archlab.s3()` starts it once
# per kernel; `.client()` returns a boto3 client with dummy credentials that only knows this
# address.

# %%
import hashlib
import math
import os
import random
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psycopg

import archlab
from archlab import bloom, datasets
from archlab.engines.base import free_port
from archlab.widgets import bloom_widget

store = archlab.s3()                 # moto's S3 server on 127.0.0.1, started once per kernel
store.reset()                        # every run starts with no buckets
s3 = store.client()                  # boto3, dummy credentials, this endpoint only
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # plain HTTP, no proxy, no credentials
print(store, f"started in {store.startup_seconds:.2f} s")

# %% [markdown]
# ## Object Storage & S3 Basics
#
# An **object store** keeps *objects*: a byte string plus metadata (size, content type, an
# ETag, user metadata), stored under a **key** inside a **bucket**. There are no directories,
# no partial writes and no appends: a `PUT` replaces the whole object, a `GET` reads it (or a
# byte range of it). The interface is HTTP, so any program anywhere can read and write it, and
# the service can spread billions of objects over thousands of disks because no object depends
# on another. That is the trade: enormous scale and durability (AWS designs S3 for eleven 9s of
# annual durability by storing every object redundantly across several data centres) in
# exchange for a simple, whole-object interface.
#
# We make a bucket for the shop: product images under `products/<category>/`, monthly order
# exports under `exports/<year>/`, and a README at the top.

# %%
products = datasets.load("products")
orders = datasets.load("orders")

s3.create_bucket(Bucket="shop-media")
for p in products.groupby("category").head(10).itertuples():        # ten photos per category
    fake_jpeg = hashlib.sha256(p.sku.encode()).digest() * 8            # 256 bytes standing in for a photo
    s3.put_object(Bucket="shop-media", Key=f"products/{p.category}/{p.sku}.jpg", Body=fake_jpeg,
                  ContentType="image/jpeg")
for month, part in orders.groupby(orders["created_at"].dt.strftime("%Y-%m")):
    s3.put_object(Bucket="shop-media", Key=f"exports/{month[:4]}/orders-{month}.csv",
                  Body=part.to_csv(index=False).encode(), ContentType="text/csv")
s3.put_object(Bucket="shop-media", Key="README.txt", Body=b"shop media bucket\n")

everything = s3.list_objects_v2(Bucket="shop-media")
print("keys in the bucket:", everything["KeyCount"], "| truncated at 1000 per page:", everything["IsTruncated"])

# %% [markdown]
# **Prefixes and the delimiter.** The key `products/toys/SKU-000042.jpg` is one flat string;
# the slashes mean nothing to the store. Consoles still show folders because `ListObjectsV2`
# takes a `Prefix` (only keys that start with it) and a `Delimiter`: keys whose remainder after
# the prefix contains the delimiter are rolled up into one **common prefix** each, which is what
# a "folder" is. Listing returns at most `MaxKeys` entries (1000 by default) per request; when
# `IsTruncated` is true you ask again with the `NextContinuationToken`.

# %%
top = s3.list_objects_v2(Bucket="shop-media", Delimiter="/")
print("top level, folders:", [p["Prefix"] for p in top["CommonPrefixes"]], "files:", [o["Key"] for o in top["Contents"]])
cats = s3.list_objects_v2(Bucket="shop-media", Prefix="products/", Delimiter="/")
print("products/, folders:", [p["Prefix"] for p in cats["CommonPrefixes"]])
page = s3.list_objects_v2(Bucket="shop-media", Prefix="products/toys/", MaxKeys=5)
print("first page of products/toys/:", [o["Key"] for o in page["Contents"]], "more:", page["IsTruncated"])

# %% [markdown]
# ### Exercise 1: list a folder (5 points)
#
# Complete `list_folder`: the sub-folders (common prefixes) and the files directly inside a
# folder, like `ls`. It must ask for at most `page_size` entries per request (`MaxKeys`) and
# follow `NextContinuationToken` until the listing is complete, and it must not confuse the
# folder `photos/2024` with a sibling such as `photos/2024-old/`.

# %% nbgrader={"grade_id": "week07-modern-storage-ex01-list-folder", "solution": true}
def list_folder(client, bucket: str, folder: str, page_size: int = 1000) -> dict:
    """{"folders": [...], "files": [...]} for `folder` of `bucket`, both sorted lists of full keys.

    folder: "" for the top level, else a path such as "exports/2025" (a trailing "/" is allowed).
    "folders" are the common prefixes one level down, each ending in "/" (e.g. "exports/2025/");
    "files" are the keys directly in the folder (e.g. "exports/2025/orders-2025-01.csv"), not in
    its sub-folders. Use client.list_objects_v2 with Prefix, Delimiter="/" and MaxKeys=page_size,
    following NextContinuationToken while IsTruncated is true."""
    ### BEGIN SOLUTION
    prefix = folder.rstrip("/") + "/" if folder.strip("/") else ""
    folders, files, token = [], [], None
    while True:
        args = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": page_size}
        if token:
            args["ContinuationToken"] = token
        page = client.list_objects_v2(**args)
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        files += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return {"folders": sorted(folders), "files": sorted(files)}
        token = page["NextContinuationToken"]
    ### END SOLUTION


# %% nbgrader={"grade_id": "week07-modern-storage-ex01-list-folder-tests", "grade": true, "points": 2}
_c = archlab.s3().client()
_got = list_folder(_c, "shop-media", "exports")
assert type(_got) is dict and set(_got) == {"folders", "files"}, _got
assert type(_got["folders"]) is list and type(_got["files"]) is list
assert _got == {"folders": ["exports/2025/"], "files": []}, _got
_top = list_folder(_c, "shop-media", "")
assert _top == {"folders": ["exports/", "products/"], "files": ["README.txt"]}, _top
_jan = list_folder(_c, "shop-media", "exports/2025/")
assert _jan["folders"] == [] and _jan["files"][0] == "exports/2025/orders-2025-01.csv" and len(_jan["files"]) == 12
print("visible listing tests pass")

# %% nbgrader={"grade_id": "week07-modern-storage-ex01-list-folder-hidden", "grade": true, "points": 3}
assert type(list_folder(archlab.s3().client(), "shop-media", "products")) is dict
### BEGIN HIDDEN TESTS
_c = archlab.s3().client()


def _fresh_bucket(name, keys):
    try:
        for _o in _c.list_objects_v2(Bucket=name).get("Contents", []):
            _c.delete_object(Bucket=name, Key=_o["Key"])
        _c.delete_bucket(Bucket=name)
    except _c.exceptions.NoSuchBucket:
        pass
    _c.create_bucket(Bucket=name)
    for _k in keys:
        _c.put_object(Bucket=name, Key=_k, Body=_k.encode())


def _oracle(keys, folder):
    prefix = folder.rstrip("/") + "/" if folder.strip("/") else ""
    folders, files = set(), set()
    for k in keys:
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if "/" in rest:
            folders.add(prefix + rest.split("/")[0] + "/")
        else:
            files.add(k)
    return {"folders": sorted(folders), "files": sorted(files)}


_keys = (["top.txt", "photos/cover.png", "photos/2024/readme.md", "photos/2024-old/x.jpg", "photos/2024old.txt"]
         + [f"photos/2024/img-{i:03d}.jpg" for i in range(9)]
         + [f"photos/2024/{d}/raw-{i}.cr2" for d in ("jan", "feb", "mar") for i in range(2)]
         + [f"logs/2024/{i:02d}/app.log" for i in range(1, 13)])
_fresh_bucket("ex01-hidden", _keys)
for _folder in ("", "photos", "photos/", "photos/2024", "photos/2024/", "photos/2024/feb", "logs", "logs/2024",
                "nothing-here"):
    for _ps in (1, 3, 1000):
        _got = list_folder(_c, "ex01-hidden", _folder, page_size=_ps)
        assert type(_got) is dict and type(_got.get("folders")) is list and type(_got.get("files")) is list, _got
        assert all(type(x) is str for x in _got["folders"] + _got["files"])
        _want = _oracle(_keys, _folder)
        assert _got == _want, (_folder, _ps, _got, _want)

_calls = []


def _counting(params, **kwargs):
    _calls.append(params.get("MaxKeys"))


_c.meta.events.register("provide-client-params.s3.ListObjectsV2", _counting)
try:
    list_folder(_c, "ex01-hidden", "photos/2024", page_size=4)
finally:
    _c.meta.events.unregister("provide-client-params.s3.ListObjectsV2", _counting)
assert _calls and set(_calls) == {4} and len(_calls) >= 4, f"expected pages of 4 entries, saw MaxKeys {_calls}"
### END HIDDEN TESTS

# %% [markdown]
# **Multipart upload.** A single `PUT` is limited to 5 GB, and a failed 4 GB upload would have
# to start over. A multipart upload sends parts (5 MiB to 5 GiB each, except the last; up to
# 10,000 parts) independently, in parallel and retried one by one, then `CompleteMultipartUpload`
# stitches them in part-number order. The result's ETag is not the MD5 of the object: it is
# the MD5 of the concatenated binary MD5s of the parts, followed by `-<number of parts>`.
# We upload an export of orders in three parts and check both the ETag and the content.

# %%
MiB = 2**20
blob = (orders.to_csv(index=False).encode() * 60)[: 11 * MiB]
parts_data = [blob[i: i + 5 * MiB] for i in range(0, len(blob), 5 * MiB)]
s3.create_bucket(Bucket="shop-archive")
upload = s3.create_multipart_upload(Bucket="shop-archive", Key="orders/all-orders-x60.csv")
parts = []
for number, data in enumerate(parts_data, start=1):
    r = s3.upload_part(Bucket="shop-archive", Key="orders/all-orders-x60.csv", PartNumber=number,
                       UploadId=upload["UploadId"], Body=data)
    parts.append({"PartNumber": number, "ETag": r["ETag"]})
done = s3.complete_multipart_upload(Bucket="shop-archive", Key="orders/all-orders-x60.csv",
                                    UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
expected_etag = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + f"-{len(parts_data)}"
stored = s3.get_object(Bucket="shop-archive", Key="orders/all-orders-x60.csv")["Body"].read()
print("part sizes (MiB):", [round(len(d) / MiB, 2) for d in parts_data])
print("server ETag  :", done["ETag"].strip('"'))
print("computed ETag:", expected_etag, "| same bytes back:", stored == blob, "| MD5 of the whole object:",
      hashlib.md5(blob).hexdigest())

small = s3.create_multipart_upload(Bucket="shop-archive", Key="too-small")
small_parts = [{"PartNumber": i, "ETag": s3.upload_part(Bucket="shop-archive", Key="too-small", PartNumber=i,
                                                       UploadId=small["UploadId"], Body=b"x" * 1024)["ETag"]}
               for i in (1, 2)]
try:
    s3.complete_multipart_upload(Bucket="shop-archive", Key="too-small", UploadId=small["UploadId"],
                                 MultipartUpload={"Parts": small_parts})
except s3.exceptions.ClientError as e:
    print("two 1 KiB parts:", e.response["Error"]["Code"])
_ = s3.abort_multipart_upload(Bucket="shop-archive", Key="too-small", UploadId=small["UploadId"])

# %% [markdown]
# The server enforces the 5 MiB minimum for every part but the last, as S3 does. Unfinished
# uploads keep their parts (and on AWS are billed) until completed or aborted; a lifecycle rule
# `AbortIncompleteMultipartUpload` cleans them up.
#
# **Versioning.** With versioning on, every `PUT` keeps the old object as an older version,
# and `DELETE` adds a *delete marker* instead of removing data. A plain `GET` then answers
# 404, but every version is still there and can be copied back: versioning is the object
# store's protection against overwrites and deletes by mistake (not against losing the bucket,
# for which you replicate to another bucket or region).

# %%
s3.create_bucket(Bucket="shop-config")
s3.put_bucket_versioning(Bucket="shop-config", VersioningConfiguration={"Status": "Enabled"})
for body in (b'{"discount": 0}', b'{"discount": 10}', b'{"discount": 100}'):   # the last one is a typo
    s3.put_object(Bucket="shop-config", Key="prices.json", Body=body)
s3.delete_object(Bucket="shop-config", Key="prices.json")
try:
    s3.get_object(Bucket="shop-config", Key="prices.json")
except s3.exceptions.NoSuchKey:
    print("GET prices.json after DELETE: 404 NoSuchKey")

history = s3.list_object_versions(Bucket="shop-config", Prefix="prices.json")
versions = sorted(history["Versions"], key=lambda v: v["LastModified"])
good = next(v for v in versions
            if s3.get_object(Bucket="shop-config", Key="prices.json", VersionId=v["VersionId"])["Body"].read()
            == b'{"discount": 10}')
s3.copy_object(Bucket="shop-config", Key="prices.json",
               CopySource={"Bucket": "shop-config", "Key": "prices.json", "VersionId": good["VersionId"]})
print("restored:", s3.get_object(Bucket="shop-config", Key="prices.json")["Body"].read())
after = s3.list_object_versions(Bucket="shop-config", Prefix="prices.json")
pd.DataFrame([{"kind": "version", "size (bytes)": v["Size"], "latest": v["IsLatest"], "version id": v["VersionId"][:8]}
              for v in after["Versions"]]
             + [{"kind": "delete marker", "size (bytes)": 0, "latest": d["IsLatest"], "version id": d["VersionId"][:8]}
                for d in after["DeleteMarkers"]])

# %% [markdown]
# Restoring is itself a new `PUT` (a copy), so history is never rewritten: four versions and
# one delete marker now exist.
#
# **Presigned URLs.** A presigned URL carries a signature, made with the owner's secret key,
# over the method, bucket, key and an expiry time. Anyone holding it can do exactly that one
# request until it expires, without credentials: the usual way to let a browser download a
# private file, or upload straight to the bucket, without passing the bytes through your
# servers. We fetch one with plain `urllib` (no AWS code, no credentials).

# %%
KEY = "exports/2025/orders-2025-03.csv"
url = s3.generate_presigned_url("get_object", Params={"Bucket": "shop-media", "Key": KEY}, ExpiresIn=300)
print(url.split("?")[0], "?", "&".join(q.split("=")[0] for q in url.split("?")[1].split("&")))
body = http.open(url, timeout=10).read()
print("presigned GET:", len(body), "bytes, same as the object:",
      body == s3.get_object(Bucket="shop-media", Key=KEY)["Body"].read())
try:
    http.open(f"{store.endpoint_url}/shop-media/{KEY}", timeout=10)
except urllib.error.HTTPError as e:
    print("the same URL without a signature:", e.code)

forged = url.replace(url.split("X-Amz-Signature=")[1][:8], "00000000")
forged = forged.replace(url.split("X-Amz-Date=")[1][:16], "20200101T000000Z")
print("signature altered and dated 2020 (expired long ago):", http.open(forged, timeout=10).status)

# %% [markdown]
# The last line is a limit of the stand-in, not of S3: **moto checks that a signature is
# present but neither verifies it nor enforces the expiry**, so the forged, long-expired URL
# still gets 200. AWS (and MinIO) answer 403 `SignatureDoesNotMatch` or `AccessDenied:
# Request has expired`. Test signature handling against the real service.
#
# **Consistency.** Since December 2020 S3 gives **strong read-after-write consistency** for
# every `PUT` and `DELETE` of an object, including overwrites, and **strong list-after-write**:
# once a write returns, every `GET`, `HEAD` and `LIST` from anywhere sees it. Before that, S3
# promised read-after-write only for *new* keys (and not even then if you had asked for the key
# before it existed); overwrites, deletes and listings were **eventually consistent**, so a
# reader could get the old version, or a list could miss a new key, for a while. Tools such as
# Hadoop's S3Guard and Netflix's s3mper existed to paper over that. Two things remain: bucket
# configuration changes (versioning, policies) still propagate eventually, and concurrent
# writers to one key still race (the last write wins) unless they use **conditional writes**
# (`If-None-Match: *` "create only if absent", `If-Match: <etag>` "replace only if unchanged",
# added to S3 in 2024).

# %%
readers = [store.client(), store.client()]
stale = 0
for i in range(25):
    s3.put_object(Bucket="shop-config", Key="counter.txt", Body=str(i).encode())
    got = readers[i % 2].get_object(Bucket="shop-config", Key="counter.txt")["Body"].read()
    listed = {o["Key"] for o in readers[(i + 1) % 2].list_objects_v2(Bucket="shop-config", Prefix="uploads/")
              .get("Contents", [])}
    s3.put_object(Bucket="shop-config", Key=f"uploads/u{i:03d}", Body=b"")
    listed_after = readers[i % 2].list_objects_v2(Bucket="shop-config", Prefix="uploads/")["KeyCount"]
    stale += (got != str(i).encode()) + (len(listed) != i) + (listed_after != i + 1)
checks = 3 * 25
s3.put_object(Bucket="shop-config", Key="lock", Body=b"owner=A", IfNoneMatch="*")
try:
    s3.put_object(Bucket="shop-config", Key="lock", Body=b"owner=B", IfNoneMatch="*")
except s3.exceptions.ClientError as e:
    second_writer = e.response["Error"]["Code"]
print(f"{checks} read/list-after-write checks from other clients, stale answers: {stale}")
print("second create-if-absent of the same key:", second_writer)

# %% [markdown]
# Every check saw the newest write, and the second "create only if absent" was refused, so
# conditional writes can implement a lock or a compare-and-swap on one key. What this server
# **cannot show**: moto is one process holding objects in memory, so it is trivially
# consistent; it cannot reproduce the old eventual behaviour, replication across data centres,
# durability, per-prefix request-rate limits (3,500 writes and 5,500 reads per second per
# prefix on AWS), storage classes or their prices. Everything above about the API (keys,
# delimiters, pagination, multipart rules and ETags, versions, presigned URLs, conditional
# writes) behaves as on S3.

# %% [markdown]
# ## File Systems
#
# Three ways to offer storage, from the lowest level up:
#
# | | block storage | file storage | object storage |
# |---|---|---|---|
# | unit | fixed-size blocks on a volume, addressed by number | files in a directory tree | objects in a flat bucket, addressed by key |
# | interface | read/write block N (SCSI, NVMe, iSCSI) | POSIX: open, read, write at an offset, rename, lock | HTTP: PUT, GET (ranges), DELETE, LIST |
# | update | any block in place | any byte range in place, append | whole object only |
# | metadata | none (a file system on top adds it) | owner, permissions, times, hierarchy | user metadata, tags, versions |
# | sharing | one machine at a time (a file system mounts it) | many clients (NFS, SMB, distributed FS) | any number of clients over HTTP |
# | examples | a disk, AWS EBS, a SAN LUN | ext4, NFS, HDFS, GFS, AWS EFS | S3, GCS, Azure Blob, MinIO |
# | good for | databases, boot volumes | shared files, legacy applications, analytics (HDFS) | media, backups, data lakes, static sites |
#
# A database wants block storage: it updates 8 KB pages in place and calls `fsync`. A file
# system turns blocks into files: it maps each file offset to a block and allocates blocks
# lazily. The cell below makes a 64 MiB *sparse* file (only its last byte written) and then
# changes 4 KiB in the middle of an 8 MiB file, in the notebook's temporary directory.

# %%
work = Path(tempfile.mkdtemp(prefix="week07-"))
sparse = work / "sparse.bin"
with open(sparse, "wb") as f:
    f.seek(64 * MiB - 1)
    f.write(b"\0")
st = os.stat(sparse)
fs = os.statvfs(work)
print(f"sparse file: size {st.st_size / MiB:.0f} MiB, blocks allocated {st.st_blocks * 512 / 1024:.0f} KiB; "
      f"file system block size {fs.f_bsize} bytes")

data_file = work / "export.csv"
data_file.write_bytes(blob[: 8 * MiB])
fd = os.open(data_file, os.O_RDWR)
changed = os.pwrite(fd, b"#" * 4096, 4 * MiB)           # POSIX: write 4 KiB at an offset, in place
os.close(fd)
object_bytes = len(blob[: 8 * MiB])                     # an object store needs the whole object PUT again
print(f"change 4 KiB of an 8 MiB file: file system writes {changed} bytes, object store re-uploads "
      f"{object_bytes} bytes ({object_bytes // changed}x)")

# %% [markdown]
# The file system allocated almost nothing for 64 MiB of zeros, and it changed the 4 KiB in
# place; an object store has no partial write, so the same edit re-uploads the whole object
# (2048 times the bytes here, as the cell computed). That is why databases and logs do not live
# on object storage directly, while write-once data (images, exports, backups, Parquet files)
# fits it perfectly.
#
# ### Distributed file systems: GFS and HDFS
#
# One machine's disks are too small and fail too often for web-scale data. The Google File
# System (2003) and its open-source descendant HDFS split every file into large **chunks**
# (GFS 64 MB, HDFS "blocks" of 128 MB by default), store each chunk as an ordinary file on
# several **chunk servers** (HDFS: *DataNodes*), **three replicas** by default, and keep all
# metadata in one **master** (HDFS: *NameNode*): the namespace, the file → chunk mapping, and
# where each chunk's replicas live. A client asks the master where the chunks are, then reads
# and writes the chunk servers directly, so the master never carries data. Chunk servers send
# heartbeats; when one stops, the master **re-replicates** every chunk that lost a copy, from a
# surviving replica, and all chunk servers take part in parallel.
#
# Large chunks keep the master's metadata small enough to hold in memory; GFS needed less than
# 64 bytes per chunk:

# %%
PiB = 2**50
for name, chunk in (("GFS, 64 MiB chunks", 64 * MiB), ("HDFS, 128 MiB blocks", 128 * MiB), ("4 KiB blocks", 4096)):
    n_chunks = PiB // chunk
    print(f"{name:22s}: 1 PiB = {n_chunks:>15,} chunks -> master metadata at 64 B each: "
          f"{n_chunks * 64 / 2**30:,.1f} GiB")

# %% [markdown]
# One pebibyte needs one GiB of master memory in 64 MiB chunks, but 16 TiB in 4 KiB blocks:
# large chunks are what makes a single metadata server possible (and small files are the
# classic weakness of HDFS).
#
# ### Exercise 2: place chunks, lose servers, re-replicate (5 points)
#
# Write the master's two jobs as a small, seeded model. `place_chunks` gives each chunk
# `replicas` *different* servers chosen at random. `fail_and_repair` takes the servers in
# `failed` away at once, counts the chunks **at risk** (they lost at least one replica, so they
# are under-replicated until repaired) and the chunks **lost** (no replica left), and
# re-replicates the rest with the rule in the docstring, which makes the repaired placement
# exact.

# %% nbgrader={"grade_id": "week07-modern-storage-ex02-chunk-placement", "solution": true}
def place_chunks(n_chunks: int, servers: list, replicas: int, rng: random.Random) -> dict:
    """{chunk id: [server, ...]} for chunk ids 0..n_chunks-1. Each chunk gets `replicas`
    different servers, drawn uniformly at random with `rng` (e.g. rng.sample), chunk 0 first.
    Raises ValueError if replicas > len(servers)."""
    ### BEGIN SOLUTION
    if replicas > len(servers):
        raise ValueError("more replicas than servers")
    return {c: rng.sample(servers, replicas) for c in range(n_chunks)}
    ### END SOLUTION


def fail_and_repair(placement: dict, servers: list, failed: set, replicas: int) -> tuple:
    """The servers in `failed` die at once. Returns (at_risk, lost, repaired):

    at_risk  -- number of chunks with at least one replica on a failed server;
    lost     -- number of chunks whose replicas were all on failed servers;
    repaired -- a NEW placement (do not modify `placement`): failed servers removed from every
                chunk's list (lost chunks map to []), then every chunk that is not lost but has
                fewer than `replicas` replicas gets new ones until it has `replicas` (or until no
                live server is left that does not hold it). Chunks are repaired in increasing
                chunk id; each new replica goes to the live server NOT already holding that chunk
                that holds the fewest replicas at that moment (counting replicas added so far);
                ties go to the server listed first in `servers`; new replicas are appended."""
    ### BEGIN SOLUTION
    live = [s for s in servers if s not in failed]
    repaired = {c: [s for s in holders if s not in failed] for c, holders in placement.items()}
    at_risk = sum(1 for c, holders in placement.items() if len(repaired[c]) < len(holders))
    lost = sum(1 for c, holders in placement.items() if holders and not repaired[c])
    load = {s: 0 for s in live}
    for holders in repaired.values():
        for s in holders:
            load[s] += 1
    order = {s: i for i, s in enumerate(servers)}
    for c in sorted(repaired):
        holders = repaired[c]
        if not holders:
            continue
        while len(holders) < replicas:
            candidates = [s for s in live if s not in holders]
            if not candidates:
                break
            target = min(candidates, key=lambda s: (load[s], order[s]))
            holders.append(target)
            load[target] += 1
    return at_risk, lost, repaired
    ### END SOLUTION


# %% nbgrader={"grade_id": "week07-modern-storage-ex02-chunk-placement-tests", "grade": true, "points": 2}
_p = place_chunks(50, ["a", "b", "c", "d", "e"], 3, random.Random(1))
assert type(_p) is dict and sorted(_p) == list(range(50)), _p
assert all(type(v) is list and len(v) == 3 and len(set(v)) == 3 and set(v) <= set("abcde") for v in _p.values())
assert _p == place_chunks(50, ["a", "b", "c", "d", "e"], 3, random.Random(1)), "same seed, same placement"

_before = {0: ["A", "B"], 1: ["B", "C"], 2: ["A", "C"], 3: ["C", "D"]}
_copy = {c: list(v) for c, v in _before.items()}
_r = fail_and_repair(_before, ["A", "B", "C", "D"], {"C"}, 2)
assert type(_r) is tuple and len(_r) == 3 and type(_r[0]) is int and type(_r[1]) is int, _r
assert _r[:2] == (3, 0), _r[:2]
assert _r[2] == {0: ["A", "B"], 1: ["B", "D"], 2: ["A", "B"], 3: ["D", "A"]}, _r[2]
assert _before == _copy, "the input placement must not change"
print("visible placement tests pass")

# %% nbgrader={"grade_id": "week07-modern-storage-ex02-chunk-placement-hidden", "grade": true, "points": 3}
assert type(fail_and_repair({0: ["x", "y"]}, ["x", "y", "z"], {"x"}, 2)) is tuple
### BEGIN HIDDEN TESTS
import random as _random


def _oracle(placement, servers, failed, replicas):
    live = [s for s in servers if s not in failed]
    rep = {c: [s for s in h if s not in failed] for c, h in placement.items()}
    risk = sum(1 for c, h in placement.items() if any(s in failed for s in h))
    lost = sum(1 for c, h in placement.items() if h and not rep[c])
    load = {s: sum(h.count(s) for h in rep.values()) for s in live}
    for c in sorted(rep):
        h = rep[c]
        while h and len(h) < replicas:
            cand = [s for s in live if s not in h]
            if not cand:
                break
            best = min(cand, key=lambda s: (load[s], servers.index(s)))
            h.append(best)
            load[best] += 1
    return risk, lost, rep


assert fail_and_repair({0: ["x", "y"], 1: ["y", "z"]}, ["x", "y", "z"], {"x", "y"}, 2) == (2, 1, {0: [], 1: ["z"]})
assert fail_and_repair({0: ["x", "y"]}, ["x", "y"], {"x"}, 2) == (1, 0, {0: ["y"]})      # nowhere to copy to

for _seed in range(40):
    _rng = _random.Random(1000 + _seed)
    _servers = [f"cs{i:02d}" for i in range(_rng.randint(3, 12))]
    _r = _rng.randint(1, min(4, len(_servers)))
    _n = _rng.randint(1, 300)
    _pl = place_chunks(_n, _servers, _r, _random.Random(_seed))
    assert type(_pl) is dict and sorted(_pl) == list(range(_n))
    for _h in _pl.values():
        assert type(_h) is list and len(_h) == _r and len(set(_h)) == _r and set(_h) <= set(_servers), _h
    assert _pl == place_chunks(_n, _servers, _r, _random.Random(_seed))
    _failed = set(_rng.sample(_servers, _rng.randint(1, min(3, len(_servers) - 1))))
    _snapshot = {c: list(h) for c, h in _pl.items()}
    _got = fail_and_repair(_pl, _servers, _failed, _r)
    assert _pl == _snapshot, "the input placement changed"
    _want = _oracle(_snapshot, _servers, _failed, _r)
    assert type(_got) is tuple and len(_got) == 3 and type(_got[0]) is int and type(_got[1]) is int
    assert _got[0] == _want[0], ("at risk", _seed, _got[0], _want[0])
    assert _got[1] == _want[1], ("lost", _seed, _got[1], _want[1])
    assert _got[2] == _want[2], ("repaired placement differs", _seed)
    for _h in _got[2].values():
        assert len(set(_h)) == len(_h) and not set(_h) & _failed

_loads = {}
for _c, _h in place_chunks(3000, list("ABCDEFGHIJ"), 3, _random.Random(7)).items():
    for _s in _h:
        _loads[_s] = _loads.get(_s, 0) + 1
assert len(_loads) == 10 and 750 < min(_loads.values()) and max(_loads.values()) < 1050, _loads   # uniform: 900 each
assert place_chunks(100, list("ABCDEFGHIJ"), 3, _random.Random(1)) != place_chunks(100, list("ABCDEFGHIJ"), 3,
                                                                           _random.Random(2)), "placement ignores rng"
try:
    place_chunks(5, ["a", "b"], 3, _random.Random(0))
    raise AssertionError("3 replicas on 2 servers must raise ValueError")
except ValueError:
    pass
### END HIDDEN TESTS

# %% [markdown]
# **How much is at risk, and how much is lost?** With `S` servers and `r` random replicas per
# chunk, one failure puts a fraction `r / S` of the chunks at risk. A chunk is *lost* only if all
# `r` of its servers are among the `f` that fail together, probability `C(f, r) / C(S, r)`. The
# cell compares that formula with your placement over 6 seeds (10 servers, 3,000 chunks).

# %%
SERVERS = [f"cs{i:02d}" for i in range(10)]
N_CHUNKS = 3000
rows = []
for r in (2, 3):
    for f in (1, 2, 3):
        risk, lost = [], []
        for seed in range(6):
            pl = place_chunks(N_CHUNKS, SERVERS, r, random.Random(seed))
            failed = set(random.Random(100 + seed).sample(SERVERS, f))
            a, b, _ = fail_and_repair(pl, SERVERS, failed, r)
            risk.append(a)
            lost.append(b)
        rows.append({"replicas r": r, "servers failed f": f, "at risk (mean)": sum(risk) / 6,
                     "at risk, formula": N_CHUNKS * (1 - math.comb(len(SERVERS) - f, r) / math.comb(len(SERVERS), r)),
                     "lost (mean)": sum(lost) / 6,
                     "lost, formula": N_CHUNKS * math.comb(f, r) / math.comb(len(SERVERS), r)})
loss_table = pd.DataFrame(rows).round(1)
loss_table

# %% [markdown]
# The measured means follow the formulas. Two replicas lose chunks as soon as two servers fail
# together (3,000 / C(10, 2) = 67 chunks expected); three replicas need three simultaneous
# failures, and even then lose only 3,000 / C(10, 3) = 25. That is why the default is three,
# and why the repair must be fast: the chunks at risk are exposed until re-replicated.
#
# **Why repair is fast.** Every surviving server holds some of the chunks that need a copy, so
# re-replication reads and writes in parallel on all of them, instead of rebuilding one
# replacement disk from one source as RAID does:

# %%
pl = place_chunks(N_CHUNKS, SERVERS, 3, random.Random(1))
at_risk, lost, repaired = fail_and_repair(pl, SERVERS, {"cs03"}, 3)
new_copies = {s: sum(1 for c in pl if s in repaired[c] and s not in pl[c]) for s in SERVERS if s != "cs03"}
CHUNK_MB, DISK_MB_S = 64, 100
parallel_s = max(new_copies.values()) * CHUNK_MB / DISK_MB_S
single_s = at_risk * CHUNK_MB / DISK_MB_S
print(f"chunks at risk: {at_risk}, lost: {lost}; new copies per live server: {sorted(new_copies.values())}")
print(f"repair at {DISK_MB_S} MB/s per disk: {parallel_s / 60:.1f} min in parallel vs "
      f"{single_s / 60:.1f} min onto one replacement disk ({single_s / parallel_s:.1f}x; a perfectly even "
      f"spread over {len(new_copies)} survivors would give {len(new_copies)}x)")

# %% [markdown]
# All nine survivors take part, so the window of exposure shrinks several-fold (the ratio printed
# above). It falls short of nine because the least-loaded rule evens out each server's *total*
# load: servers that happened to hold more chunks before receive fewer new copies, and the
# busiest receiver sets the pace. Real masters also throttle repair
# traffic so it does not starve clients, and prefer to repair chunks that lost two replicas
# before those that lost one; HDFS additionally places replicas on two racks, so that losing a
# whole rack (a switch, a power feed) cannot lose a block.

# %% [markdown]
# ## Backup & Restore
#
# Replication protects against a machine failing; it faithfully copies a `DELETE` without a
# `WHERE` to every replica within milliseconds. A **backup** is a copy from the past that the
# mistake did not reach. Two numbers define what a backup strategy must achieve:
#
# - **RPO** (recovery point objective): how much recent data you may lose, as a time window.
#   Nightly backups only: up to 24 h of orders gone.
# - **RTO** (recovery time objective): how long restoring may take before service is back.
#
# Kinds of backup:
#
# - **logical** (`pg_dump`): SQL-level content of one database; portable across versions and
#   machines; slow to restore for big databases (it re-inserts rows and rebuilds indexes);
# - **physical full** (`pg_basebackup`): a copy of the data directory's files, taken while the
#   server runs, plus the WAL needed to make the copy consistent; restore is a file copy;
# - **incremental** (PostgreSQL 17+: `pg_basebackup --incremental`, then `pg_combinebackup`): only
#   the blocks changed since an earlier backup (a differential backup would be relative to the
#   last *full* one);
# - **continuous WAL archiving**: every completed 16 MB WAL segment is copied away by
#   `archive_command`. A base backup plus the archived WAL can be replayed to **any moment**:
#   **point-in-time recovery** (PITR), e.g. to the second before the bad `DELETE`.
#
# We do all of it for real. PostgreSQL's own programs (`pg_dump`, `pg_basebackup`, ...) come
# with the server; `pg_tool` runs them as the operating-system user that owns the server's files.

# %%
pg = archlab.postgres()


pg_tool = pg.run_tool      # pg_tool("pg_dump", ...) runs PostgreSQL's program as the server's OS user


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() else Path(path).stat().st_size


backups = pg.own(tempfile.mkdtemp(prefix="week07-backups-", dir=pg.root))   # inside the server's temporary dir
archive = backups / "wal_archive"
with pg.connect() as c:
    c.execute("ALTER SYSTEM SET archive_mode = on")
    c.execute(f"ALTER SYSTEM SET archive_command = 'mkdir -p {archive} && test ! -f {archive}/%f && cp %p {archive}/%f'")
    c.execute("ALTER SYSTEM SET summarize_wal = on")        # lets pg_basebackup take incremental backups
    c.execute("SELECT pg_reload_conf()")
    needs_restart = c.execute("SHOW archive_mode").fetchone()[0] != "on"
if needs_restart:
    pg.restart()                                            # archive_mode only changes at server start
db = pg.create_database("week07")
conn = pg.connect(db)
print(conn.execute("SELECT setting FROM pg_settings WHERE name = 'archive_command'").fetchone()[0])

# %% [markdown]
# The `archive_command` copies each finished segment (`%p` is its path, `%f` its file name) and
# refuses to overwrite one already archived, as the manual recommends. Now some orders, then a
# **logical full backup** restored into a second database:

# %%
conn.execute("""CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total_cents int NOT NULL,
                note text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())""")
conn.execute("""INSERT INTO orders (id, customer_id, total_cents, note)
                SELECT g, 1 + g % 1000, 100 + (g * 7919) % 50000, 'order ' || g FROM generate_series(1, 20000) g""")
lsn = {"after the first 20,000 orders": conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]}

dump = backups / "week07.dump"
t0 = time.perf_counter()
pg_tool("pg_dump", "-h", pg.host, "-p", pg.port, "-U", pg.user, "--format=custom", "-f", dump, db)
dump_s = time.perf_counter() - t0
pg.create_database("week07_copy")
t0 = time.perf_counter()
pg_tool("pg_restore", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-d", "week07_copy", dump)
restore_s = time.perf_counter() - t0
with pg.connect("week07_copy") as c:
    copied = c.execute("SELECT count(*), sum(total_cents) FROM orders").fetchone()
print(f"pg_dump: {size_of(dump) / 1024:.0f} KiB (compressed), restore took {restore_s / dump_s:.1f}x the dump time; "
      f"restored copy: {copied[0]} orders, total {copied[1]} cents, original total "
      f"{conn.execute('SELECT sum(total_cents) FROM orders').fetchone()[0]}")

# %% [markdown]
# A logical dump is small (it stores rows, not indexes or free space) and restores anywhere,
# but restoring replays every row and rebuilds every index, which is why it grows slow for
# large databases. Next, the **physical** backups: a full base backup, more changes, then an
# incremental backup relative to the full one's manifest.

# %%
pg_tool("pg_basebackup", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-D", backups / "full",
        "--checkpoint=fast", "--wal-method=fetch", "--no-sync", "--manifest-checksums=NONE")
conn.execute("""INSERT INTO orders (id, customer_id, total_cents, note)
                SELECT g, 1 + g % 1000, 100 + (g * 7919) % 50000, 'order ' || g FROM generate_series(20001, 21000) g""")
conn.execute("UPDATE orders SET note = note || ' (paid)' WHERE id % 40 = 0")
lsn["after 1,000 more orders and 525 updates"] = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
pg_tool("pg_basebackup", "-h", pg.host, "-p", pg.port, "-U", pg.user, "-D", backups / "incr1",
        "--checkpoint=fast", "--wal-method=fetch", "--no-sync", "--manifest-checksums=NONE",
        "--incremental", backups / "full" / "backup_manifest")
full_mb, incr_mb = size_of(backups / "full") / MiB, size_of(backups / "incr1") / MiB
incr_wal_mb = size_of(backups / "incr1" / "pg_wal") / MiB
print(f"full base backup: {full_mb:.1f} MiB; incremental: {incr_mb:.1f} MiB ({full_mb / incr_mb:.1f}x smaller), "
      f"of which {incr_wal_mb:.1f} MiB is the WAL segment it carries and {incr_mb - incr_wal_mb:.1f} MiB changed data")

# %% [markdown]
# The full backup copies every file of the cluster (including the system catalogs and the
# template databases); the incremental one holds only the blocks changed since, plus the WAL
# needed to make it consistent (one 16 MiB segment, most of its size here) and a manifest. The
# changed data is a small fraction of the full backup, and since the WAL part is fixed, the
# ratio grows with the size of the database.
#
# **Point-in-time recovery.** A few more orders arrive; we note the time; then someone runs
# the classic accident. The WAL keeps going, and the archiver copies each finished segment.

# %%
conn.execute("""INSERT INTO orders (id, customer_id, total_cents, note)
                SELECT g, 1 + g % 1000, 100 + (g * 7919) % 50000, 'order ' || g FROM generate_series(21001, 21100) g""")
good_state = conn.execute("SELECT count(*), sum(total_cents) FROM orders").fetchone()
recover_to = conn.execute("SELECT clock_timestamp()").fetchone()[0]        # the moment we want back
lsn["just before the accident"] = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
conn.execute("DELETE FROM orders")                                        # no WHERE: every order gone
lsn["after DELETE FROM orders"] = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]   # close the segment now
for _ in range(200):                                                      # wait for the archiver (< 10 s)
    archived = conn.execute("SELECT last_archived_wal, failed_count FROM pg_stat_archiver").fetchone()
    if archived[0] is not None and archived[0] >= segment:
        break
    time.sleep(0.05)
print("primary now holds", conn.execute("SELECT count(*) FROM orders").fetchone()[0], "orders; archived up to",
      archived[0], "| segments in the archive:", len(list(archive.iterdir())))
pd.DataFrame({"WAL position (LSN)": lsn})

# %% [markdown]
# An **LSN** (log sequence number) is a byte position in the WAL stream, written
# `high/low` in hexadecimal; each change advanced it. To recover we rebuild a data directory
# from the backup chain with `pg_combinebackup`, add a `recovery.signal` file and three
# settings (where to fetch archived WAL, where to stop, what to do then), and start a **second
# server** on it. It replays the archived WAL and stops before the first transaction that
# committed after `recover_to`.

# %%
restored = backups / "restored"
pg_tool("pg_combinebackup", backups / "full", backups / "incr1", "-o", restored, "--no-sync", "--no-manifest")
with open(restored / "postgresql.auto.conf", "a") as f:
    f.write(f"restore_command = 'cp {archive}/%f %p'\n"
            f"recovery_target_time = '{recover_to.isoformat()}'\n"
            "recovery_target_action = 'promote'\n"
            "archive_mode = off\n")
(restored / "recovery.signal").touch()
pg.own(restored / "recovery.signal")
port2 = free_port()
t0 = time.perf_counter()
pg_tool("pg_ctl", "-D", restored, "-w", "-l", backups / "restored.log", "-o",
        f"-h 127.0.0.1 -p {port2} -k {backups}", "start")
with psycopg.connect(f"host=127.0.0.1 port={port2} user={pg.user} dbname={db}", autocommit=True) as rc:
    while rc.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        time.sleep(0.05)
    recovered_state = rc.execute("SELECT count(*), sum(total_cents) FROM orders").fetchone()
pitr_s = time.perf_counter() - t0
pg_tool("pg_ctl", "-D", restored, "-w", "-m", "fast", "stop")
log = (backups / "restored.log").read_text()
print("\n".join(line.split("LOG:")[-1].strip() for line in log.splitlines()
                if "recovery stopping" in line or "restored log file" in line or "archive recovery complete" in line))
print(f"good state {good_state}, recovered {recovered_state}, equal: {recovered_state == good_state}; "
      f"start and recovery of the second server took {pitr_s:.1f} s")

# %% [markdown]
# The second server fetched the archived segments, replayed every transaction up to
# `recover_to`, stopped before the `DELETE` ("recovery stopping before commit"), and came up
# with exactly the rows and totals of the good state, in well under a minute here. This is the
# whole PITR toolchain a production PostgreSQL uses (tools such as pgBackRest, Barman or WAL-G
# automate the same steps and ship the archive to object storage). What this small run cannot
# show is scale: restore time grows with the base backup size and with the amount of WAL to
# replay, which is what the schedule model below is about.
#
# ### Backup schedules: RPO, RTO and cost
#
# A schedule here is `(F, I, W)`: a full backup every `F` hours, an incremental every `I`
# hours between fulls (`None`: none) and WAL shipped every `W` minutes (`None`: no WAL
# archiving). The system is described by the database size, the rate of change (WAL volume
# per hour) and the restore and replay speeds. **Worst case** means the failure happens just
# before the next full backup, with the last copies as old as the schedule allows:
#
# - **RPO** (hours) = `W / 60` with WAL shipping, else `I` with incrementals, else `F`;
# - **RTO** (hours) = restore the full (`db_gb / restore_gb_per_h`) + restore the `F / I - 1`
#   incrementals taken since it, each `change_gb_per_h * I` GB (at `restore_gb_per_h`) + with
#   WAL, replay the WAL written since the last backup: `change_gb_per_h * (I or F)` GB at
#   `replay_gb_per_h`;
# - **cost** (per day) = `cost_per_gb` × GB copied per day + `cost_per_job` × backup jobs per
#   day, where a day has `24 / F` fulls of `db_gb`, `24 / I - 24 / F` incrementals of
#   `change_gb_per_h * I` GB, and with WAL shipping `24 * 60 / W` shipments carrying
#   `24 * change_gb_per_h` GB in total.
#
# ### Exercise 3: the cheapest schedule that meets RPO and RTO (6 points)
#
# Implement the model exactly as above in `schedule_metrics`, then `cheapest_schedule`.

# %% nbgrader={"grade_id": "week07-modern-storage-ex03-backup-schedule", "solution": true}
def schedule_metrics(schedule: tuple, system: dict) -> dict:
    """Worst-case {"rpo_h": float, "rto_h": float, "cost_per_day": float} of schedule (F, I, W).

    F: hours between full backups. I: hours between incrementals (None: none; else I < F and F % I == 0).
    W: minutes between WAL shipments (None: no WAL archiving). system has the keys db_gb,
    change_gb_per_h, restore_gb_per_h, replay_gb_per_h, cost_per_gb, cost_per_job.
    Raises ValueError for an invalid I."""
    ### BEGIN SOLUTION
    F, Inc, W = schedule
    if Inc is not None and (Inc >= F or F % Inc != 0):
        raise ValueError("incrementals must divide the full-backup interval")
    s = system
    rpo = W / 60 if W else (Inc if Inc else F)
    interval = Inc if Inc else F
    rto = s["db_gb"] / s["restore_gb_per_h"]
    if Inc:
        rto += (F / Inc - 1) * s["change_gb_per_h"] * Inc / s["restore_gb_per_h"]
    if W:
        rto += s["change_gb_per_h"] * interval / s["replay_gb_per_h"]
    fulls = 24 / F
    incrs = 24 / Inc - 24 / F if Inc else 0.0
    ships = 24 * 60 / W if W else 0.0
    gb = fulls * s["db_gb"] + incrs * s["change_gb_per_h"] * (Inc or 0) + (24 * s["change_gb_per_h"] if W else 0.0)
    cost = gb * s["cost_per_gb"] + (fulls + incrs + ships) * s["cost_per_job"]
    return {"rpo_h": float(rpo), "rto_h": float(rto), "cost_per_day": float(cost)}
    ### END SOLUTION


def cheapest_schedule(candidates: list, system: dict, max_rpo_h: float, max_rto_h: float):
    """The candidate with the lowest cost_per_day among those with rpo_h <= max_rpo_h and
    rto_h <= max_rto_h (compare with a tolerance of 1e-9); ties: lower rto_h, then lower
    rpo_h, then earlier in `candidates`. None if no candidate meets both objectives."""
    ### BEGIN SOLUTION
    best, best_key = None, None
    for i, cand in enumerate(candidates):
        m = schedule_metrics(cand, system)
        if m["rpo_h"] <= max_rpo_h + 1e-9 and m["rto_h"] <= max_rto_h + 1e-9:
            key = (m["cost_per_day"], m["rto_h"], m["rpo_h"], i)
            if best_key is None or key < best_key:
                best, best_key = cand, key
    return best
    ### END SOLUTION


# %% nbgrader={"grade_id": "week07-modern-storage-ex03-backup-schedule-tests", "grade": true, "points": 2}
_sys = {"db_gb": 100, "change_gb_per_h": 2, "restore_gb_per_h": 200, "replay_gb_per_h": 10,
        "cost_per_gb": 0.01, "cost_per_job": 0.05}
_m = schedule_metrics((24, None, None), _sys)
assert type(_m) is dict and all(type(_m[k]) is float for k in ("rpo_h", "rto_h", "cost_per_day")), _m
assert math.isclose(_m["rpo_h"], 24) and math.isclose(_m["rto_h"], 0.5) and math.isclose(_m["cost_per_day"], 1.05), _m
_m = schedule_metrics((24, 6, 15), _sys)
assert math.isclose(_m["rpo_h"], 0.25) and math.isclose(_m["rto_h"], 0.5 + 3 * 12 / 200 + 12 / 10), _m
assert math.isclose(_m["cost_per_day"], (100 + 3 * 12 + 48) * 0.01 + (1 + 3 + 96) * 0.05), _m
_cands = [(24, None, None), (24, 6, None), (24, 6, 15), (24, None, 15)]
assert cheapest_schedule(_cands, _sys, max_rpo_h=24, max_rto_h=1) == (24, None, None)
assert cheapest_schedule(_cands, _sys, max_rpo_h=6, max_rto_h=2) == (24, 6, None)
assert cheapest_schedule(_cands, _sys, max_rpo_h=0.1, max_rto_h=10) is None
print("visible schedule tests pass")

# %% nbgrader={"grade_id": "week07-modern-storage-ex03-backup-schedule-hidden", "grade": true, "points": 4}
assert type(schedule_metrics((168, 24, 5), {"db_gb": 1, "change_gb_per_h": 1, "restore_gb_per_h": 1,
                                             "replay_gb_per_h": 1, "cost_per_gb": 1, "cost_per_job": 1})) is dict
### BEGIN HIDDEN TESTS
import random as _random


def _metrics(F, Inc, W, s):
    rpo = W / 60 if W else (Inc if Inc else F)
    rto = s["db_gb"] / s["restore_gb_per_h"]
    if Inc:
        rto += (F // Inc - 1) * s["change_gb_per_h"] * Inc / s["restore_gb_per_h"]
    if W:
        rto += s["change_gb_per_h"] * (Inc or F) / s["replay_gb_per_h"]
    n_full = 24 / F
    n_incr = (24 / Inc - 24 / F) if Inc else 0
    n_ship = 1440 / W if W else 0
    gb = n_full * s["db_gb"] + n_incr * s["change_gb_per_h"] * (Inc or 0) + (24 * s["change_gb_per_h"] if W else 0)
    return rpo, rto, gb * s["cost_per_gb"] + (n_full + n_incr + n_ship) * s["cost_per_job"]


_CANDS = [(F, Inc, W) for F in (24, 72, 168) for Inc in (None, 1, 4, 6, 12, 24) for W in (None, 1, 5, 15, 60)
          if Inc is None or (Inc < F and F % Inc == 0)]
for _F, _I, _W in ((168, 24, 5), (72, None, 60), (24, 12, None)):
    try:
        schedule_metrics((_F, 5, _W), {"db_gb": 1, "change_gb_per_h": 1, "restore_gb_per_h": 1, "replay_gb_per_h": 1,
                                       "cost_per_gb": 1, "cost_per_job": 1})
        raise AssertionError("an incremental interval that does not divide F must raise ValueError")
    except ValueError:
        pass
_rng = _random.Random(77)
for _trial in range(60):
    _s = {"db_gb": _rng.choice([20, 100, 500, 2000]), "change_gb_per_h": _rng.choice([0.5, 2, 5, 20]),
          "restore_gb_per_h": _rng.choice([100, 300, 1000]), "replay_gb_per_h": _rng.choice([5, 20, 60]),
          "cost_per_gb": _rng.choice([0.002, 0.01, 0.03]), "cost_per_job": _rng.choice([0.01, 0.1, 1.0])}
    for _cand in _rng.sample(_CANDS, 10):
        _got = schedule_metrics(_cand, _s)
        _want = _metrics(*_cand, _s)
        assert type(_got) is dict and all(type(_got[k]) is float for k in ("rpo_h", "rto_h", "cost_per_day"))
        for _k, _w in zip(("rpo_h", "rto_h", "cost_per_day"), _want, strict=True):
            assert math.isclose(_got[_k], _w, rel_tol=1e-9, abs_tol=1e-12), (_cand, _s, _k, _got[_k], _w)
    _rpo, _rto = _rng.choice([0.02, 0.1, 0.5, 1, 4, 24, 72]), _rng.choice([0.2, 0.5, 1, 2, 4, 8, 24])
    _ok = [(c, _metrics(*c, _s)) for c in _CANDS]
    _ok = [(m[2], m[1], m[0], i, c) for i, (c, m) in enumerate(_ok) if m[0] <= _rpo + 1e-9 and m[1] <= _rto + 1e-9]
    _want = min(_ok)[4] if _ok else None
    _got = cheapest_schedule(list(_CANDS), _s, _rpo, _rto)
    assert _got == _want, (_s, _rpo, _rto, _got, _want)
_s = {"db_gb": 400, "change_gb_per_h": 4, "restore_gb_per_h": 200, "replay_gb_per_h": 8,
      "cost_per_gb": 0.01, "cost_per_job": 0.02}
assert cheapest_schedule([(168, None, 5), (24, 6, 5)], _s, 0.1, 6) == (24, 6, 5)     # replaying a week of WAL is too slow
### END HIDDEN TESTS

# %% [markdown]
# The shop's orders database, with every sensible schedule, and the cheapest one for three
# sets of objectives:

# %%
SHOP = {"db_gb": 200, "change_gb_per_h": 3, "restore_gb_per_h": 400, "replay_gb_per_h": 15,
        "cost_per_gb": 0.01, "cost_per_job": 0.01}
CANDIDATES = [(F, Inc, W) for F in (24, 168) for Inc in (None, 1, 6, 24) for W in (None, 1, 5, 15)
              if Inc is None or (Inc < F and F % Inc == 0)]
plans = pd.DataFrame([{"full every (h)": F, "incremental every (h)": Inc, "WAL every (min)": W,
                       **schedule_metrics((F, Inc, W), SHOP)} for F, Inc, W in CANDIDATES]).round(3)
objectives = [("lose at most a day, back within 2 h", 24, 2), ("lose at most 5 min, back within 1 h", 5 / 60, 1),
              ("lose at most 1 min, back within 30 min", 1 / 60, 0.5)]
pd.DataFrame([{"objective": name, "RPO (h)": round(rpo, 3), "RTO (h)": rto,
               "cheapest schedule (F h, I h, W min)": cheapest_schedule(CANDIDATES, SHOP, rpo, rto)}
              for name, rpo, rto in objectives])

# %% [markdown]
# Every candidate, cheapest first:

# %%
plans.sort_values("cost_per_day")

# %% [markdown]
# Read the choices against this table. Without WAL shipping the RPO is the backup interval, so
# only WAL shipping brings it down to minutes. WAL shipping alone does not meet an RTO,
# though: with weekly full backups the worst case replays a week of WAL (the rows with an RTO
# of more than a day), because replay is much slower than copying files back. A tight RTO
# therefore forces frequent base or incremental backups that cut the WAL to replay, and that
# is what the 5-minute / 1-hour objective pays for. The 1-minute / 30-minute objective has no
# answer (`None`): restoring the 200 GB full backup alone takes 30 minutes at 400 GB/h. The
# answer there is not a schedule but an architecture: a hot standby that has already replayed
# the WAL (failover in seconds to minutes), with the backups kept for the mistakes that
# replication copies.

# %% [markdown]
# ## Bloom Filters
#
# Before reading a disk page, a file or a remote partition to look for a key, it pays to ask
# a tiny in-memory structure "is the key possibly there?". A **Bloom filter** answers *no* for
# certain or *maybe*: it has **no false negatives**, and a tunable rate of false positives.
# It is an array of `m` bits and `k` hash functions. `add(x)` sets the `k` bits `g_0(x) ...
# g_{k-1}(x)`; `x in filter` checks that all `k` are set. LSM stores (RocksDB, Cassandra,
# HBase) keep one per sorted run so a lookup skips the runs that cannot hold the key; Chrome
# used one for its list of malicious URLs; databases use them in distributed joins.
#
# After `n` inserts a given bit is still 0 with probability `(1 - 1/m)^(kn) ≈ e^(-kn/m)`; a key
# that was never added is a false positive if its `k` bits are all 1:
#
# **p ≈ (1 - e^(-kn/m))^k**
#
# For fixed bits per key `m/n`, p is smallest at **k = (m/n) ln 2** (then half the bits are
# set), where p = 2^(-k), so a target p needs **m/n = -ln p / (ln 2)^2** bits per key.

# %%
def fp_rate(m, n, k):
    return (1 - math.exp(-k * n / m)) ** k


bits_for_1pct = -math.log(0.01) / math.log(2) ** 2
k_for_1pct = bits_for_1pct * math.log(2)
print(f"1% false positives: {bits_for_1pct:.2f} bits per key, optimum k = {k_for_1pct:.2f} -> {round(k_for_1pct)}; "
      f"with 10 bits per key and k = 7: p = {fp_rate(10, 1, 7):.4f}")
print(f"a billion keys at 1%: {bits_for_1pct * 1e9 / 8 / 1e9:.2f} GB; bits per key for each further factor of 10: "
      f"{math.log(10) / math.log(2) ** 2:.2f}")
pd.DataFrame([{"bits per key m/n": b, "best k": max(1, round(b * math.log(2))),
               "p at best k": fp_rate(b, 1, max(1, round(b * math.log(2)))), "p with k = 1": fp_rate(b, 1, 1)}
              for b in (4, 8, 9.6, 12, 16, 20)]).round(5)

# %% [markdown]
# About 9.6 bits per key and 7 hash functions give 1 %, whatever the key size: a filter for a
# billion keys needs about 1.2 GB, and each extra 4.8 bits per key divides p by ten. One hash
# function (k = 1) would need far more memory for the same rate (last column).
#
# **Double hashing.** Computing `k` independent hashes is slow. Kirsch and Mitzenmacher showed
# that two are enough: `g_i(x) = (h1(x) + i · h2(x)) mod m` for `i = 0 .. k-1` has the same
# asymptotic false-positive rate. `h2` must never be 0 mod m (all `k` positions would coincide);
# with `m` prime and `1 ≤ h2 < m`, the `k ≤ m` positions of a key are all different.
#
# ### Exercise 4: a Bloom filter with double hashing (6 points)
#
# Implement `BloomFilter` as the docstring says. The tests check that no added key is ever
# reported absent, that positions are valid, and that the **measured false-positive rate is
# within ±15 %** of the formula for several (m, n, k).

# %% nbgrader={"grade_id": "week07-modern-storage-ex04-bloom-filter", "solution": true}
import hashlib


class BloomFilter:
    """m bits, k hash functions by double hashing: g_i(x) = (h1 + i * h2) mod m, i = 0..k-1.

    h1 and h2 come from one hash: d = hashlib.blake2b(str(item).encode(), digest_size=16).digest();
    h1 = int.from_bytes(d[:8], "big") and h2 = 1 + int.from_bytes(d[8:], "big") % (m - 1), so that
    h2 is never 0 mod m. Keep the bits in a bytearray or an int; m >= 2, k >= 1."""

    def __init__(self, m: int, k: int):
        ### BEGIN SOLUTION
        if m < 2 or k < 1:
            raise ValueError("need m >= 2 and k >= 1")
        self.m, self.k = m, k
        self.bits = bytearray(m)
        ### END SOLUTION

    def positions(self, item) -> list:
        """The k bit positions of `item`, in order i = 0..k-1 (ints in range(m))."""
        ### BEGIN SOLUTION
        d = hashlib.blake2b(str(item).encode(), digest_size=16).digest()
        h1 = int.from_bytes(d[:8], "big")
        h2 = 1 + int.from_bytes(d[8:], "big") % (self.m - 1)
        return [(h1 + i * h2) % self.m for i in range(self.k)]
        ### END SOLUTION

    def add(self, item) -> None:
        ### BEGIN SOLUTION
        for p in self.positions(item):
            self.bits[p] = 1
        ### END SOLUTION

    def __contains__(self, item) -> bool:
        ### BEGIN SOLUTION
        return all(self.bits[p] for p in self.positions(item))
        ### END SOLUTION


# %% nbgrader={"grade_id": "week07-modern-storage-ex04-bloom-filter-tests", "grade": true, "points": 2}
_f = BloomFilter(1000, 4)
_pos = _f.positions("apple")
assert type(_pos) is list and len(_pos) == 4 and all(type(p) is int and 0 <= p < 1000 for p in _pos), _pos
assert _pos == BloomFilter(1000, 4).positions("apple"), "positions must not depend on the instance"
for _i in range(200):
    _f.add(f"k{_i}")
assert all(f"k{_i}" in _f for _i in range(200)), "false negative"
assert ("apple" in BloomFilter(1000, 4)) is False
_f = BloomFilter(6000, 4)
for _i in range(1000):
    _f.add(f"member-{_i}")
_fp = sum(f"stranger-{_j}" in _f for _j in range(20000)) / 20000
_p = (1 - math.exp(-4 * 1000 / 6000)) ** 4
assert abs(_fp - _p) <= 0.15 * _p, f"measured {_fp:.4f}, formula {_p:.4f}"
print(f"visible Bloom filter tests pass (measured {_fp:.4f}, formula {_p:.4f})")

# %% nbgrader={"grade_id": "week07-modern-storage-ex04-bloom-filter-hidden", "grade": true, "points": 4}
assert len(BloomFilter(101, 3).positions("x")) == 3
### BEGIN HIDDEN TESTS
import math as _math

for _m, _k in ((11, 5), (13, 13), (101, 7)):                       # prime m: k distinct positions per key
    _bf = BloomFilter(_m, _k)
    for _i in range(3000):
        _ps = _bf.positions(f"item:{_i}")
        assert type(_ps) is list and len(_ps) == _k and all(type(p) is int and 0 <= p < _m for p in _ps), _ps
        assert len(set(_ps)) == _k, f"m={_m}, k={_k}: positions {_ps} repeat (is h2 ever 0 mod m?)"

for _m, _n, _k, _q in ((4000, 800, 3, 30000), (5003, 800, 4, 30000), (8192, 1000, 5, 40000)):
    _bf = BloomFilter(_m, _k)
    _members = [f"user-{_i * 7919}" for _i in range(_n)]
    for _x in _members:
        _bf.add(_x)
    assert all(_x in _bf for _x in _members), "false negative"
    _hits = sum(1 for _j in range(_q) if f"probe/{_j}" in _bf)
    _p = (1 - _math.exp(-_k * _n / _m)) ** _k
    assert abs(_hits / _q - _p) <= 0.15 * _p, f"m={_m} n={_n} k={_k}: measured {_hits / _q:.4f}, formula {_p:.4f}"

_bf = BloomFilter(64, 3)                                           # non-string items and objects
for _x in (1, 2.5, ("t", 1), None):
    _bf.add(_x)
    assert _x in _bf
### END HIDDEN TESTS

# %% [markdown]
# **Measured against the formula.** `archlab.bloom.measure` inserts `n` keys into *your*
# filter, queries 1,000 keys that were never inserted and reports the fraction answered
# "maybe" next to the formula, for a grid of (m, n, k).

# %%
GRID = [(m, n, k) for m in (4096, 16384) for n in (500, 2000) for k in (1, 2, 4, 6, 8, 11)]
measured = bloom.measure(lambda m, k: BloomFilter(m, k), GRID, queries=1000)
measured["measured / formula"] = measured["measured fp"] / measured["theory fp"]
reliable = measured[measured["theory fp"] >= 0.05]               # at least ~50 hits out of 1,000 for a ratio
print(f"{len(measured)} filters, false negatives: {measured['false negatives'].sum()}; measured/formula where "
      f"p >= 5%: median {reliable['measured / formula'].median():.3f}, range "
      f"{reliable['measured / formula'].min():.2f}-{reliable['measured / formula'].max():.2f}")
bloom_widget(measured, m=16384, n=2000, k=6)

# %% [markdown]
# Move the sliders: the measured dots sit on the formula wherever the rate is large enough to
# measure with 1,000 queries (the ratio summary above), and the false-positive rate has a
# minimum at k\* = (m/n) ln 2 (the dotted line): fewer hashes check too few bits, more hashes
# fill the array. Adding keys beyond the design `n` makes p climb steeply (right panel), which
# is why filters are sized for the final number of keys, or rebuilt.
#
# **What it buys.** An LSM store with 10 sorted runs looks up a key that does not exist. Without
# filters it searches every run; with 10 bits per key and k = 7 it searches a run only on a
# false positive:

# %%
runs, lookups = 10, 100_000
p10 = fp_rate(10, 1, 7)
print(f"run searches for {lookups:,} misses: {runs * lookups:,} without filters, about "
      f"{runs * lookups * p10:,.0f} with them ({1 / p10:.0f}x fewer), for 10 bits of memory per key")

# %% [markdown]
# ### Exercise 5 (written): storage and backups for the shop (4 points)
#
# The shop has (1) its orders database in PostgreSQL, 200 GB, changing about 3 GB per hour,
# with RPO 5 minutes and RTO 1 hour; (2) 2 TB of product photos, written once and read often;
# (3) monthly CSV exports for accounting, which must be kept unchanged for 7 years. In 6-10
# sentences: which kind of storage (block, file, object) holds each, which backup schedule (or
# architecture) you choose for the database and why, and how you protect the photos and the
# exports against deletion by mistake. Use at least two numbers computed in this notebook.

# %% [markdown] nbgrader={"grade_id": "week07-modern-storage-ex05-storage-design", "solution": true, "grade": true, "points": 4}
# **Model answer.** The database lives on block storage (a local NVMe or EBS-style volume):
# PostgreSQL updates 8 KB pages in place and needs fast `fsync`, which object storage cannot
# offer (it would re-upload a whole object for a 4 KiB change, 2048 times the bytes in the
# file-system cell). For RPO 5 min / RTO 1 h the schedule model gives the cheapest plan in the
# objectives table (WAL shipped every 5 minutes or more often, plus frequent enough base or
# incremental backups that less than an hour of restore and replay remains); continuous WAL
# archiving (`archive_command` or `pg_receivewal`) to an object store, with nightly full and
# hourly incremental base backups, is the standard implementation, and the PITR run above
# shows it recovers to the second before a bad `DELETE`. Because a tighter RTO would fail
# (`None` rows), a streaming hot standby should also be run for failover, with the backups
# kept for the mistakes replication copies. Photos go to object storage: write-once, read
# often, HTTP-served through presigned URLs or a CDN, with versioning on so an overwrite or
# delete leaves the old version recoverable (as the `prices.json` restore showed), and
# replication to a second region for disasters. Exports go to a separate bucket with
# versioning and a 7-year retention lock (S3 Object Lock in compliance mode), so nobody,
# including an administrator or a compromised account, can delete or change them; backups
# should be tested by restoring them regularly, as this notebook did.
#
# **Rubric (4 points).** 1 point: a correct storage kind for each of the three with a reason
# (block for the database because of in-place page writes and fsync; object for photos and
# exports). 1 point: a backup plan whose RPO and RTO are justified with the model (WAL
# shipping interval for RPO, base/incremental frequency or replay speed for RTO), using a
# number from the notebook. 1 point: protection against mistakes: versioning (and/or Object
# Lock/retention for the exports) and why replication alone is not a backup. 1 point: at least
# two numbers from the notebook used correctly (e.g. 2048x re-upload, the cheapest schedule or
# its RTO, at-risk chunk counts, restore ratios), and a mention of testing restores or of a
# standby for the RTO. Other well-argued choices (e.g. file storage for photos behind a
# shared file system) earn the points if the trade-off is stated.

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] create buckets and objects over the S3 API, list "folders" with a prefix, a delimiter
#       and pagination, and explain why a key's slashes are not directories
# - [ ] upload in parts and predict the multipart ETag; restore a deleted or overwritten object
#       from its versions; share an object with a presigned URL; make a write conditional
# - [ ] state S3's consistency guarantees today and before December 2020, and what a local
#       stand-in such as moto can and cannot show
# - [ ] choose between block, file and object storage for a workload
# - [ ] place chunk replicas, count chunks at risk and lost after failures, and explain why
#       re-replication in a GFS/HDFS cluster is fast
# - [ ] take logical, physical full and incremental PostgreSQL backups and do a point-in-time
#       recovery from archived WAL
# - [ ] compute the worst-case RPO, RTO and cost of a backup schedule and pick the cheapest that
#       meets the objectives
# - [ ] build a Bloom filter with double hashing and size it: 9.6 bits per key and k = 7 for 1 %
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *How do I ensure data consistency across distributed services?* Know what your storage
#    promises: S3 is strongly consistent per key, but two writers still race unless the write
#    is conditional.
# 2. *Can I explain the trade-offs between consistency and availability?* Three replicas keep
#    data available through one or two failures; a backup is what survives the failures that
#    replication faithfully copies.
#
# Check yourself: why does a GFS master keep all metadata in memory, and what does that limit?
# Why does a tight RPO cost little but a tight RTO cost a lot? Why does a Bloom filter with
# k = 20 and 10 bits per key do worse than one with k = 7? What would still go wrong with the
# PITR above if the WAL archive lived on the same disk as the database?
