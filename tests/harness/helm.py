"""helm and the Kubernetes schemas, for the chart's tests (test_helm.py).

helm 4.3.2 is built from its Go module by contrib/build-helm.sh into
${XDG_CACHE_HOME:-~/.cache}/todod-tests/helm-4.3.2/bin (tests/run does it
and exports TODOD_HELM_BINDIR; the harness runs the script itself when the
binary is missing, which takes minutes once).

The schemas: PyPI's `kubernetes-validate`, which ships the Kubernetes
OpenAPI schemas of many releases, in a cached virtualenv of its own
(${XDG_CACHE_HOME:-~/.cache}/todod-tests/venv-kubernetes-validate), as
harness/mcp_sdk.py keeps the MCP SDK: pytest stays on Debian's python3,
and the validation runs there as a subprocess.
"""

import json
import os
import subprocess
import tempfile

import yaml

from .todod import SRCDIR
from .util import ServiceUnavailable
from .venv import PinnedVenv, cache_dir

HELM_VERSION = "4.3.2"
KUBERNETES_VALIDATE_VERSION = "1.37.0"
CHART = os.path.join(SRCDIR, "k8s", "helm", "todod")


def _helm_version(path):
    if not os.access(path, os.X_OK):
        return None
    res = subprocess.run([path, "version", "--template", "{{.Version}}"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


_helm = None


def helm_binary():
    """The helm binary of the pinned version; builds it when missing."""
    global _helm
    if _helm:
        return _helm
    bindir = os.environ.get("TODOD_HELM_BINDIR") or os.path.join(cache_dir(),
                                                                 f"helm-{HELM_VERSION}", "bin")
    path = os.path.join(bindir, "helm")
    if _helm_version(path) != "v" + HELM_VERSION:
        script = os.path.join(SRCDIR, "contrib", "build-helm.sh")
        res = subprocess.run([script, os.path.dirname(bindir)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0 or _helm_version(path) != "v" + HELM_VERSION:
            raise ServiceUnavailable(f"no helm {HELM_VERSION} at {path}: contrib/build-helm.sh "
                                     f"said ({res.returncode}):\n{res.stdout[-3000:]}")
    _helm = path
    return path


def run_helm(*args, timeout=120):
    env = dict(os.environ)
    # helm keeps its repositories, cache and plugins under these; nothing
    # of the user's must leak in, nothing of the test's out.
    home = tempfile.mkdtemp(prefix="todod-helm-home.")
    env.update(HELM_CACHE_HOME=os.path.join(home, "cache"),
               HELM_CONFIG_HOME=os.path.join(home, "config"),
               HELM_DATA_HOME=os.path.join(home, "data"))
    env.pop("KUBECONFIG", None)
    try:
        return subprocess.run([helm_binary(), *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    finally:
        subprocess.run(["rm", "-rf", home], check=False)


def _values_file(values, tmpdir):
    path = os.path.join(tmpdir, "values.json")
    with open(path, "w") as f:
        json.dump(values or {}, f)  # JSON is YAML
    return path


def template_text(values=None, release="todod", namespace="todod", extra=()):
    """`helm template`'s output; an AssertionError shows helm's message."""
    with tempfile.TemporaryDirectory(prefix="todod-helm.") as tmp:
        res = run_helm("template", release, CHART, "--namespace", namespace,
                       "-f", _values_file(values, tmp), *extra)
    if res.returncode != 0:
        raise AssertionError(f"helm template failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return res.stdout


def template_error(values=None):
    """helm template's message for values it must refuse."""
    with tempfile.TemporaryDirectory(prefix="todod-helm.") as tmp:
        res = run_helm("template", "todod", CHART, "-f", _values_file(values, tmp))
    assert res.returncode != 0, f"helm template accepted {values}:\n{res.stdout[:2000]}"
    return res.stderr


def template(values=None, **kw):
    """The rendered objects, as dicts (hooks included)."""
    return [d for d in yaml.safe_load_all(template_text(values, **kw)) if d]


def lint(values=None, strict=True):
    with tempfile.TemporaryDirectory(prefix="todod-helm.") as tmp:
        args = ["lint", CHART, "-f", _values_file(values, tmp)]
        if strict:
            args.append("--strict")
        return run_helm(*args)


# ---- kubernetes-validate ------------------------------------------------------

_VALIDATOR = PinnedVenv("venv-kubernetes-validate", "kubernetes-validate",
                        KUBERNETES_VALIDATE_VERSION)


def validator_python():
    """The venv's python with kubernetes-validate, built once."""
    return _VALIDATOR.ensure()


# Runs in the venv: validates each document (JSON list on stdin) against
# the schemas of one Kubernetes release, strictly (unknown fields are
# errors), and prints one verdict per document.
_VALIDATE = r"""
import json, sys
import kubernetes_validate as kv
version = sys.argv[1]
out = []
for doc in json.load(sys.stdin):
    what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        kv.validate(doc, version, strict=True)
        out.append({"object": what, "result": "valid"})
    except kv.SchemaNotFoundError as exc:
        out.append({"object": what, "result": "no-schema", "message": str(exc)})
    except kv.ValidationError as exc:
        out.append({"object": what, "result": "invalid",
                    "message": f"{'.'.join(map(str, exc.path))}: {exc.message}"})
    except Exception as exc:
        out.append({"object": what, "result": "error", "message": repr(exc)})
print(json.dumps(out))
"""


def kubernetes_versions():
    """The Kubernetes releases whose schemas kubernetes-validate ships."""
    res = subprocess.run([validator_python(), "-c",
                          "import json, kubernetes_validate.utils as u; "
                          "print(json.dumps(u.all_versions()))"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise AssertionError(f"listing schema versions failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout)


def validate(docs, version):
    """One verdict per object: {"object", "result": valid | invalid |
    no-schema | error, "message"}."""
    res = subprocess.run([validator_python(), "-c", _VALIDATE, version], input=json.dumps(docs),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if res.returncode != 0:
        raise AssertionError(f"kubernetes-validate failed ({res.returncode}):\n"
                             f"{res.stderr[-3000:]}")
    return json.loads(res.stdout)


# Runs in the venv: validates objects against CustomResourceDefinitions'
# openAPIV3Schema (argv: a JSON file of {"objects": [...], "crds": [...]}).
# Fields a schema does not declare are errors, as the API server's pruning
# would drop them silently.
_VALIDATE_CRD = r"""
import json, sys
import jsonschema

def strict(schema):
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema = dict(schema, additionalProperties=False)
        return {k: strict(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema

with open(sys.argv[1]) as f:
    data = json.load(f)
schemas = {}
for crd in data["crds"]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for v in crd["spec"]["versions"]:
        schemas[(f"{group}/{v['name']}", kind)] = strict(v["schema"]["openAPIV3Schema"])
out = []
for doc in data["objects"]:
    what = f"{doc['kind']}/{doc['metadata']['name']}"
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        out.append({"object": what, "result": "no-schema"})
        continue
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
    out.append({"object": what, "result": "invalid" if errors else "valid",
                "message": "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}"
                                     for e in errors[:5])})
print(json.dumps(out))
"""


def validate_crd_objects(docs, crds):
    """One verdict per object against the CRDs given (dicts)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"objects": docs, "crds": crds}, f)
    try:
        res = subprocess.run([validator_python(), "-c", _VALIDATE_CRD, f.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=300)
    finally:
        os.unlink(f.name)
    if res.returncode != 0:
        raise AssertionError(f"CRD validation failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout)


def dapr_crds():
    """Dapr 1.18's CustomResourceDefinitions, read from the Dapr module
    that contrib/build-dapr.sh downloaded (nothing of them is kept in this
    project)."""
    crd_dir = os.path.join(dapr_source_dir(), "charts", "dapr", "crds")
    if not os.path.isdir(crd_dir):
        raise ServiceUnavailable(f"no Dapr 1.18.0 CRDs in {crd_dir}: run contrib/build-dapr.sh")
    crds = []
    for name in sorted(os.listdir(crd_dir)):
        with open(os.path.join(crd_dir, name)) as f:
            crds.extend(d for d in yaml.safe_load_all(f)
                        if d and d.get("kind") == "CustomResourceDefinition")
    return crds


def dapr_source_dir():
    bindir = os.environ.get("TODOD_DAPR_BINDIR") or os.path.join(cache_dir(), "dapr-1.18.0", "bin")
    return os.path.join(os.path.dirname(bindir), "go", "pkg", "mod", "github.com", "dapr",
                        "dapr@v1.18.0")
