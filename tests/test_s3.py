"""archlab.s3(): moto's S3 server on 127.0.0.1, once per process, spoken to with boto3,
never reaching AWS, stopped at exit, and a one-sentence error when it cannot start."""

from __future__ import annotations

import hashlib
import importlib
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

import archlab
from archlab.engines import EngineError

s3_mod = importlib.import_module("archlab.engines.s3")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture()
def client():
    server = archlab.s3()
    server.reset()
    return server.client()


def test_starts_once_on_loopback_only():
    server = archlab.s3()
    assert archlab.s3() is server, "one server per process"
    assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
    assert server._server.server_address[0] == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for other in addresses:                          # not reachable on any other interface
        with pytest.raises(OSError):
            socket.create_connection((other, server.port), timeout=1).close()
    assert server.startup_seconds < 10


def test_client_uses_dummy_credentials_and_no_environment(monkeypatch, client):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:9")           # would hang if the client used it
    monkeypatch.setenv("HTTPS_PROXY", "http://192.0.2.1:9")
    c = archlab.s3().client()
    creds = c._request_signer._credentials
    assert creds.access_key == s3_mod.ACCESS_KEY and c.meta.region_name == "us-east-1"
    assert c.meta.endpoint_url == archlab.s3().endpoint_url
    assert c.list_buckets()["Buckets"] == []


def test_buckets_put_get_and_delimiter_listing(client):
    client.create_bucket(Bucket="shop")
    for key in ("a.txt", "img/1.jpg", "img/2.jpg", "img/old/3.jpg", "imgx/4.jpg"):
        client.put_object(Bucket="shop", Key=key, Body=key.encode())
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["shop"]
    assert client.get_object(Bucket="shop", Key="img/1.jpg")["Body"].read() == b"img/1.jpg"
    top = client.list_objects_v2(Bucket="shop", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["img/", "imgx/"]
    assert [o["Key"] for o in top["Contents"]] == ["a.txt"]
    img = client.list_objects_v2(Bucket="shop", Prefix="img/", Delimiter="/")
    assert [o["Key"] for o in img["Contents"]] == ["img/1.jpg", "img/2.jpg"]
    assert [p["Prefix"] for p in img["CommonPrefixes"]] == ["img/old/"]
    page = client.list_objects_v2(Bucket="shop", MaxKeys=2)
    assert page["IsTruncated"] and len(page["Contents"]) == 2
    rest = client.list_objects_v2(Bucket="shop", ContinuationToken=page["NextContinuationToken"])
    assert len(rest["Contents"]) == 3


def test_versioning_keeps_every_version_and_delete_markers(client):
    client.create_bucket(Bucket="docs")
    client.put_bucket_versioning(Bucket="docs", VersioningConfiguration={"Status": "Enabled"})
    v1 = client.put_object(Bucket="docs", Key="k", Body=b"one")["VersionId"]
    client.put_object(Bucket="docs", Key="k", Body=b"two")
    client.delete_object(Bucket="docs", Key="k")
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket="docs", Key="k")
    versions = client.list_object_versions(Bucket="docs")
    assert len(versions["Versions"]) == 2 and len(versions["DeleteMarkers"]) == 1
    assert client.get_object(Bucket="docs", Key="k", VersionId=v1)["Body"].read() == b"one"
    client.copy_object(Bucket="docs", Key="k", CopySource={"Bucket": "docs", "Key": "k", "VersionId": v1})
    assert client.get_object(Bucket="docs", Key="k")["Body"].read() == b"one"


def test_multipart_upload_and_its_etag(client):
    client.create_bucket(Bucket="big")
    parts_data = [b"a" * (5 * 2**20), b"b" * (5 * 2**20), b"tail"]
    up = client.create_multipart_upload(Bucket="big", Key="blob")
    parts = []
    for i, data in enumerate(parts_data, 1):
        etag = client.upload_part(Bucket="big", Key="blob", PartNumber=i, UploadId=up["UploadId"], Body=data)["ETag"]
        parts.append({"PartNumber": i, "ETag": etag})
    done = client.complete_multipart_upload(Bucket="big", Key="blob", UploadId=up["UploadId"],
                                            MultipartUpload={"Parts": parts})
    want = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + "-3"
    assert done["ETag"].strip('"') == want
    assert client.get_object(Bucket="big", Key="blob")["Body"].read() == b"".join(parts_data)


def test_presigned_url_is_fetched_without_credentials(client):
    client.create_bucket(Bucket="share")
    client.put_object(Bucket="share", Key="report.csv", Body=b"id,total\n1,10\n")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "share", "Key": "report.csv"}, ExpiresIn=60)
    assert url.startswith(archlab.s3().endpoint_url + "/") and "X-Amz-Signature=" in url
    assert NO_PROXY.open(url, timeout=5).read() == b"id,total\n1,10\n"
    with pytest.raises(urllib.error.HTTPError) as e:          # the same object without a signature
        NO_PROXY.open(f"{archlab.s3().endpoint_url}/share/report.csv", timeout=5)
    assert e.value.code == 403


def test_stops_when_the_process_exits():
    code = textwrap.dedent("""
        import archlab
        s = archlab.s3()
        s.client().create_bucket(Bucket="bye")
        print(s.port)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    port = int(out.stdout.split()[-1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_failure_is_one_clear_sentence(monkeypatch):
    import werkzeug.serving

    def refuse(*args, **kwargs):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(werkzeug.serving, "make_server", refuse)
    with pytest.raises(EngineError) as e:
        s3_mod.S3Server()
    msg = str(e.value)
    assert msg.startswith("The S3 server did not start") and "\n" not in msg and msg.endswith(".")


def test_a_stopped_server_is_replaced():
    server = archlab.s3()
    server.stop()
    assert not server.running
    fresh = archlab.s3()
    assert fresh is not server and fresh.running
    assert fresh.client().list_buckets()["Buckets"] == []
