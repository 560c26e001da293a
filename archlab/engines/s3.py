"""A real S3 API for the notebooks: moto's server, in a thread of this process, on 127.0.0.1.

MinIO is not a Python package; moto implements the S3 REST API (buckets, keys, listing with
prefixes and delimiters, multipart uploads, versioning, presigned URLs) and answers real HTTP
requests, so boto3 talks to it exactly as it talks to AWS. The server listens on 127.0.0.1
only (moto's default is 0.0.0.0), on a port the OS picks, keeps its objects in memory, starts
once per process and is shut down when the process exits. Clients get dummy credentials and a
fixed region and never read ~/.aws, environment credentials, proxies or the network.
"""

from __future__ import annotations

import atexit
import os
import threading

from .base import EngineError, forget, singleton, temp_dir

REGION = "us-east-1"
ACCESS_KEY = "archlab-test-key"      # moto accepts any credentials; these are never real ones
SECRET_KEY = "archlab-test-secret"


class S3Server:
    """One moto S3 server. Use `archlab.s3()` rather than constructing it."""

    def __init__(self, host: str = "127.0.0.1"):
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as e:  # pragma: no cover - install problem
            raise EngineError("The S3 server (moto) is not installed in this environment: run `make lab` or "
                              "`pip install -e .` first.") from e
        self.host = host
        try:
            # Port 0: the OS picks a free port at bind time, so there is no race with other kernels.
            # Built here, not in the thread, so a failure to bind raises instead of hanging.
            class QuietHandler(MotoRequestHandler):
                def log_request(self, *args, **kwargs):   # no access log line per request in the notebook
                    pass

            self._server = make_server(host, 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                                       request_handler=QuietHandler)
        except Exception as e:
            raise EngineError(f"The S3 server did not start on {host}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}.") from e
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="archlab-s3", daemon=True)
        self._thread.start()
        self._stopped = False
        self._config = None
        atexit.register(self.stop)
        self.reset()              # moto keeps buckets in process memory: a new server starts empty

    def client(self, **config):
        """A new boto3 S3 client for this server: dummy credentials, region us-east-1, path-style
        addressing, no proxies, no AWS config files. Keyword arguments go to botocore's Config."""
        import boto3
        import botocore.session
        from botocore.config import Config

        core = botocore.session.Session()
        # Ignore ~/.aws, AWS_PROFILE, AWS_CONFIG_FILE and the like: a private, empty profile.
        core.set_config_variable("config_file", str(self._config_file()))
        core.set_config_variable("credentials_file", os.devnull)
        core.set_config_variable("profile", "archlab")
        for name in ("use_fips_endpoint", "use_dualstack_endpoint"):
            core.set_config_variable(name, False)
        core.set_config_variable("ca_bundle", None)
        session = boto3.Session(botocore_session=core, aws_access_key_id=ACCESS_KEY,
                                aws_secret_access_key=SECRET_KEY, region_name=REGION)
        settings = {"s3": {"addressing_style": "path"}, "signature_version": "s3v4", "proxies": {},
                    "connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 1, "mode": "standard"},
                    **config}
        return session.client("s3", endpoint_url=self.endpoint_url, config=Config(**settings))

    def _config_file(self):
        if self._config is None:
            self._config = temp_dir("s3") / "aws-config"
            self._config.write_text("[profile archlab]\n")
        return self._config

    def reset(self) -> None:
        """Delete every bucket and object (moto keeps them in this process's memory, shared by all
        its servers)."""
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=10).read()

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._server.shutdown()
            self._server.server_close()
        except Exception:  # already gone
            pass
        self._thread.join(timeout=5)

    def __repr__(self) -> str:
        return f"<S3 (moto) on {self.endpoint_url}>"


def s3() -> S3Server:
    """The kernel's S3 server, started on first call (well under a second after moto is imported)
    and reused after. `.endpoint_url` is its address, `.client()` a boto3 client for it."""
    server = singleton("s3", S3Server)
    if not server.running:  # stopped by hand: hand out a fresh server rather than a dead one
        forget("s3")
        server = singleton("s3", S3Server)
    return server

