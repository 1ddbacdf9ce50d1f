"""A real Kubernetes API server for the tests: etcd and kube-apiserver on
loopback, no kubelet, scheduler or controller manager, so nothing ever
runs, but every object sent is admitted or refused by the real API
(schemas, validation, admission, CRD schemas).

The binaries come from contrib/build-kube.sh (tests/run calls it), cached
in ${XDG_CACHE_HOME:-~/.cache}/todod-tests/kube-1.37.2/bin, or from
$TODOD_KUBE_BINDIR.  Each ApiServer has a fresh etcd data directory,
its own certificate authority, serving certificate, service-account
signing key and a random bearer token (a member of system:masters).

    with ApiServer() as api:                       # etcd, kube-apiserver, /readyz
        api.create_namespace("todod")
        api.install_crds(dapr_crd_files())         # waits until Established
        status, body = api.create(obj, namespace="todod", dry_run=True)

CustomResourceDefinitions are taken at test time from Go modules already
in a module cache, never kept in this project: Dapr's from the
github.com/dapr/dapr module contrib/build-dapr.sh downloaded,
prometheus-operator's (ServiceMonitor, PrometheusRule) from the module
contrib/build-kube.sh downloaded.
"""

import json
import os
import secrets
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from . import tls
from .dapr import DAPR_VERSION, _ports, _Process, bindir as dapr_bindir
from .todod import http_call
from .util import ServiceUnavailable, wait_until

KUBE_VERSION = "1.37.2"
ETCD_VERSION = "3.7.3"

# Only written into the API server's configuration: no address in it is
# ever contacted (there are no nodes, no pods, no kube-proxy).
SERVICE_CIDR = "10.96.0.0/16"


def cache_prefix():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "todod-tests", f"kube-{KUBE_VERSION}")


def bindir():
    return os.environ.get("TODOD_KUBE_BINDIR") or os.path.join(cache_prefix(), "bin")


def kube_binary(name):
    path = os.path.join(bindir(), name)
    if not os.access(path, os.X_OK):
        raise ServiceUnavailable(f"no {name} at {path}: run contrib/build-kube.sh (tests/run "
                                 "does), or point TODOD_KUBE_BINDIR at a bin/ with "
                                 "kube-apiserver and etcd")
    return path


def dapr_crd_files(kinds=("components", "configuration", "resiliency", "subscription")):
    """Dapr's CRD files from its Go module, in the module cache beside the
    Dapr binaries (contrib/build-dapr.sh keeps it under its PREFIX/go)."""
    module = os.path.join(os.path.dirname(dapr_bindir()), "go", "pkg", "mod", "github.com",
                          "dapr", f"dapr@v{DAPR_VERSION}")
    files = [os.path.join(module, "charts", "dapr", "crds", f"{kind}.yaml") for kind in kinds]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ServiceUnavailable(f"Dapr's CRDs are not in the Go module cache ({missing[0]}): "
                                 "run contrib/build-dapr.sh")
    return files


def prometheus_crd_files(kinds=("servicemonitors", "prometheusrules")):
    """prometheus-operator's CRD files from its Go module, in the cache
    contrib/build-kube.sh fills (crds/prometheus-operator names the
    directory)."""
    pointer = os.path.join(os.path.dirname(bindir()), "crds", "prometheus-operator")
    try:
        with open(pointer) as f:
            directory = f.read().strip()
    except OSError as exc:
        raise ServiceUnavailable(f"no {pointer}: run contrib/build-kube.sh") from exc
    files = [os.path.join(directory, f"monitoring.coreos.com_{kind}.yaml") for kind in kinds]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ServiceUnavailable(f"prometheus-operator's CRD {missing[0]} is missing: "
                                 "run contrib/build-kube.sh")
    return files


def load_documents(text):
    """The non-empty YAML documents of a stream, as dicts."""
    import yaml  # python3-yaml; imported here so the other harnesses do not need it
    return [doc for doc in yaml.safe_load_all(text) if doc]


class Etcd(_Process):
    name = "etcd"
    _own_tmp = False  # the ApiServer owns the directory

    def __init__(self, workdir):
        self.binary = kube_binary("etcd")
        super().__init__(workdir)
        self.tmp = workdir
        self.datadir = os.path.join(workdir, "etcd")
        self.client_port, self.peer_port = _ports(2)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.client_port}"

    def argv(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [self.binary, "--name", "default", "--data-dir", self.datadir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"default={peer}",
                # A throwaway store: losing it on a crash costs nothing.
                "--unsafe-no-fsync", "--log-level", "warn"]

    def start(self, timeout=60):
        return self._spawn_until(self._healthy, timeout, "etcd's /health", 0.1)

    def _healthy(self):
        self._check_alive()
        resp = http_call("GET", f"{self.url}/health", timeout=2)
        return resp.status == 200 and json.loads(resp.body).get("health") == "true"


class ApiServer(_Process):
    """kube-apiserver over a private etcd, HTTPS on a free loopback port."""

    name = "kube-apiserver"

    def __init__(self):
        self.binary = kube_binary("kube-apiserver")
        self.tmp = tempfile.mkdtemp(prefix="todod-kube-")
        super().__init__(self.tmp)
        self.etcd = Etcd(self.tmp)
        self.port = _ports(1)[0]
        self.token = secrets.token_hex(24)
        self.pki = os.path.join(self.tmp, "pki")
        os.makedirs(self.pki)
        self._context = None
        self._resources = {}
        self.warnings = []

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def _make_pki(self):
        self.ca = tls.make_ca(self.pki, "kube-ca")
        self.serving = tls.make_server_cert(self.pki, self.ca, name="apiserver",
                                            ips=("127.0.0.1", "10.96.0.1"),
                                            dns=("localhost", "kubernetes.default.svc"))
        self.sa_key = os.path.join(self.pki, "sa.key")
        tls._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", self.sa_key)
        self.token_file = os.path.join(self.pki, "tokens.csv")
        with open(self.token_file, "w") as f:
            f.write(f'{self.token},todod-test-admin,todod-test-admin,"system:masters"\n')
        os.chmod(self.token_file, 0o600)
        self._context = ssl.create_default_context(cafile=self.ca.cert)

    def argv(self):
        return [self.binary,
                "--etcd-servers", self.etcd.url,
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.port),
                "--cert-dir", os.path.join(self.tmp, "certs"),
                "--tls-cert-file", self.serving,
                "--tls-private-key-file", os.path.join(self.pki, "apiserver.key"),
                "--client-ca-file", self.ca.cert,
                "--token-auth-file", self.token_file,
                "--authorization-mode", "RBAC",
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--service-account-key-file", self.sa_key,
                "--service-account-signing-key-file", self.sa_key,
                "--service-cluster-ip-range", SERVICE_CIDR,
                # 127.0.0.1 is no valid endpoint of the "kubernetes" Service.
                "--endpoint-reconciler-type", "none",
                "--profiling=false", "--v", "1"]

    def start(self, timeout=180):
        self._make_pki()
        self.etcd.start()
        try:
            return self._spawn_until(self._ready, timeout, "kube-apiserver's /readyz", 0.2)
        except ServiceUnavailable:
            self.etcd.kill9()
            raise

    def destroy(self):
        self.kill9()
        self.etcd.kill9()
        super().destroy()

    def _ready(self):
        self._check_alive()
        self.etcd._check_alive()
        status, _ = self.request("GET", "/readyz", timeout=5)
        return status == 200

    # ---- the API ---------------------------------------------------------------------

    def request(self, method, path, body=None, content_type="application/json", timeout=30):
        """One call; returns (status, parsed JSON body or text).  The API's
        warnings about it are left in self.warnings."""
        data = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self._context))
        try:
            with opener.open(req, timeout=timeout) as resp:
                status, raw, reply_headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, reply_headers = exc.code, exc.read(), exc.headers
        # The API's warnings (deprecations, dropped fields, pod security):
        # '299 - "text"' headers.
        self.warnings = [w.split(" ", 2)[-1].strip('"')
                         for w in reply_headers.get_all("Warning") or []]
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_namespace(self, name, labels=None):
        status, body = self.request("POST", "/api/v1/namespaces",
                                    {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": name, "labels": labels or {}}})
        if status != 201:
            raise AssertionError(f"creating namespace {name}: {status} {body}")

    def resource(self, api_version, kind):
        """(plural, namespaced) of a kind, from the API's discovery."""
        if api_version not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, body = self.request("GET", base)
            if status != 200:
                raise AssertionError(f"discovery of {api_version}: {status} {body}")
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"])
                for r in body["resources"] if "/" not in r["name"]}
        try:
            return self._resources[api_version][kind]
        except KeyError:
            raise AssertionError(f"the API server serves no {kind} in {api_version}") from None

    def collection_path(self, obj, namespace):
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            ns = obj.get("metadata", {}).get("namespace") or namespace
            return f"{base}/namespaces/{ns}/{plural}"
        return f"{base}/{plural}"

    def create(self, obj, namespace="default", dry_run=False, strict=True):
        """POST one object.  With strict, unknown and duplicate fields are
        refused (fieldValidation=Strict) instead of dropped with a warning.
        Returns (status, body); 201 is admitted."""
        query = {"fieldValidation": "Strict" if strict else "Warn"}
        if dry_run:
            query["dryRun"] = "All"
        path = f"{self.collection_path(obj, namespace)}?{urllib.parse.urlencode(query)}"
        return self.request("POST", path, obj)

    def apply(self, obj, namespace="default", dry_run=False, manager="todod-test"):
        """Server-side apply of one object (as Helm 4 installs a chart):
        the structured merge also refuses what a create lets through,
        such as two list entries with the same key.  Strict field
        validation.  Returns (status, body); 200 or 201 is admitted."""
        query = {"fieldManager": manager, "fieldValidation": "Strict", "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        path = (f"{self.collection_path(obj, namespace)}/{obj['metadata']['name']}"
                f"?{urllib.parse.urlencode(query)}")
        return self.request("PATCH", path, obj, content_type="application/apply-patch+yaml")

    def install_crds(self, files, timeout=60):
        """Create the CRDs in `files` and wait until each is Established
        and its kinds are served."""
        names = []
        for path in files:
            with open(path) as f:
                for crd in load_documents(f.read()):
                    status, body = self.create(crd, strict=False)
                    if status != 201:
                        raise AssertionError(f"installing CRD {path}: {status} {body}")
                    names.append(crd["metadata"]["name"])
        for name in names:
            wait_until(lambda n=name: self._established(n), timeout, interval=0.2,
                       what=f"CRD {name} to be Established")
        self._resources.clear()
        return names

    def _established(self, name):
        status, body = self.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        if status != 200:
            return False
        conditions = body.get("status", {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

