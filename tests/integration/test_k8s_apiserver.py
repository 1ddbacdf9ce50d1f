"""The Helm chart k8s/helm/todod, rendered for each transport, is accepted
object by object by a real Kubernetes API server (etcd and kube-apiserver
built by contrib/build-kube.sh, on loopback) in a server-side dry-run,
with Dapr's CRDs and prometheus-operator's ServiceMonitor and
PrometheusRule CRDs installed.  No kubelet runs, so nothing is scheduled:
the API's validation, defaulting, admission and the CRDs' schemas decide.

Each object goes in twice, as a create (helm 3) and as a server-side
apply (helm 4's default), whose structured merge also refuses duplicate
list keys.  Field validation is Strict: a field the API does not know (a
typo, a key at the wrong level) is refused, not dropped with a warning,
and any warning the API gives (deprecations, pod security in a namespace
enforcing "restricted") fails the test.  The negative tests prove the
dry-run can refuse and warn.
"""

import copy
import json
import shutil

import pytest
import yaml

from harness import helm
from harness.kube import ApiServer, dapr_crd_files, prometheus_crd_files
# The values a reviewer would install, one set per transport and backend
# (test_helm.py checks the same renderings against the schemas).
from test_helm import NAMESPACE, RELEASE, VARIANTS

TRANSPORTS = ("in-process", "kafka-direct", "dapr")
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
              for mode in ("enforce", "warn", "audit")}


@pytest.fixture(scope="module")
def api():
    server = ApiServer()
    try:
        server.start()
        # Pod Security Admission at its strictest: a workload whose pod
        # template is not "restricted" (root, privilege escalation,
        # capabilities, no seccomp profile) draws a warning, which fails.
        server.create_namespace(NAMESPACE, RESTRICTED)
        server.install_crds(dapr_crd_files() + prometheus_crd_files())
        yield server
    finally:
        server.destroy()


def describe(obj):
    meta = obj.get("metadata", {})
    return f"{obj.get('apiVersion')} {obj.get('kind')} {meta.get('name')}"


def refusal(status, body):
    """The API's own words for a refusal."""
    if isinstance(body, dict):
        causes = body.get("details", {}).get("causes", [])
        lines = [f"{status} {body.get('reason')}: {body.get('message')}"]
        lines += [f"    {c.get('field', '')}: {c.get('message')}" for c in causes]
        return "\n".join(lines)
    return f"{status}: {body}"


def test_variants_cover_every_transport():
    assert {v["transport"] for v in VARIANTS.values()} == set(TRANSPORTS)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_admitted_by_api_server(api, variant):
    objects = helm.template(VARIANTS[variant], release=RELEASE, namespace=NAMESPACE)
    refused, warned = [], []
    for obj in objects:
        # A create as helm 3 sends it, a server-side apply as helm 4 does.
        for how, submit, admitted in (("create", api.create, (201,)),
                                      ("apply", api.apply, (200, 201))):
            status, body = submit(obj, namespace=NAMESPACE, dry_run=True)
            if status not in admitted:
                refused.append(f"{describe(obj)} ({how}):\n  {refusal(status, body)}")
            warned += [f"{describe(obj)} ({how}): {w}" for w in api.warnings]
    assert not refused, (f"{len(refused)} of {len(objects)} objects ({variant}) refused:\n"
                         + "\n".join(refused))
    # Deprecated APIs or fields, pod-security findings: admitted today,
    # refused by a later release or a stricter namespace.
    assert not warned, f"the API server warned ({variant}):\n" + "\n".join(warned)
    # A dry-run stores nothing.
    for obj in objects:
        path = f"{api.collection_path(obj, NAMESPACE)}/{obj['metadata']['name']}"
        status, _ = api.request("GET", path)
        assert status == 404, f"{describe(obj)} was stored by a dry-run: {status}"


def is_hook(obj):
    return "helm.sh/hook" in obj["metadata"].get("annotations", {})


def next_release_chart(tmp_path):
    """A copy of the chart as its next release: version and appVersion
    bumped, which changes the labels of every object and the image."""
    chart = tmp_path / "todod"
    shutil.copytree(helm.CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = meta["appVersion"] = "99.0.0"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_upgrade_admitted(api, tmp_path, variant):
    """An installed release (its objects applied for real) takes the next
    release's objects: no immutable field (a Deployment's selector, a
    PodDisruptionBudget's) changes between them.  Hooks are left out:
    helm deletes them before creating them again (before-hook-creation)."""
    namespace = f"upgrade-{variant}"
    api.create_namespace(namespace, RESTRICTED)
    installed = [o for o in helm.template(VARIANTS[variant], release=RELEASE,
                                          namespace=namespace) if not is_hook(o)]
    for obj in installed:
        status, body = api.apply(obj, namespace=namespace)
        assert status in (200, 201), f"installing {describe(obj)}: {refusal(status, body)}"
    values = tmp_path / "values.json"
    values.write_text(json.dumps(VARIANTS[variant]))
    res = helm.run_helm("template", RELEASE, str(next_release_chart(tmp_path)),
                        "--namespace", namespace, "-f", str(values))
    assert res.returncode == 0, res.stderr
    upgraded = [o for o in yaml.safe_load_all(res.stdout) if o and not is_hook(o)]
    assert {describe(o) for o in upgraded} == {describe(o) for o in installed}
    refused = []
    for obj in upgraded:
        status, body = api.apply(obj, namespace=namespace, dry_run=True)
        if status not in (200, 201) or api.warnings:
            refused.append(f"{describe(obj)}:\n  {refusal(status, body)} {api.warnings}")
    assert not refused, f"the upgrade ({variant}) is refused:\n" + "\n".join(refused)


def deployment(name="probe"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 1,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "todod",
                                                           "image": "todod:test",
                                                           "ports": [{"containerPort": 8080}]}]}}}}


def dapr_component(name="pubsub"):
    return {"apiVersion": "dapr.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name},
            "spec": {"type": "pubsub.kafka", "version": "v1",
                     "metadata": [{"name": "brokers", "value": "kafka:9092"}]},
            "scopes": ["todod"]}


def test_dry_run_admits_valid_objects(api):
    """The baseline the refusals below are measured against."""
    for obj in (deployment(), dapr_component()):
        status, body = api.create(obj, namespace=NAMESPACE, dry_run=True)
        assert status == 201, f"{describe(obj)}: {refusal(status, body)}"
        status, body = api.apply(obj, namespace=NAMESPACE, dry_run=True)
        assert status in (200, 201), f"{describe(obj)} (apply): {refusal(status, body)}"


def test_dry_run_refuses_invalid_objects(api):
    """Each object is one mistake away from a valid one, and each is refused."""
    bad_port = deployment()
    bad_port["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    unknown_field = deployment()
    unknown_field["spec"]["replica"] = 2
    bad_probe = deployment()
    bad_probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/readyz"}}  # no port
    bad_component = dapr_component()
    bad_component["spec"]["metadata"] = "brokers=kafka:9092"  # the CRD wants a list
    component_no_type = copy.deepcopy(dapr_component())
    del component_no_type["spec"]["type"]
    cases = {"containerPort 70000": (bad_port, "containerPort"),
             "unknown field spec.replica": (unknown_field, "replica"),
             "readinessProbe without a port": (bad_probe, "port"),
             "Component spec.metadata a string": (bad_component, "spec.metadata"),
             "Component without spec.type": (component_no_type, "spec.type")}
    for what, (obj, needle) in cases.items():
        for submit in (api.create, api.apply):
            status, body = submit(obj, namespace=NAMESPACE, dry_run=True)
            message = refusal(status, body)
            # A server-side apply refuses a field its schema lacks with a
            # 500 ("failed to create typed patch object"), not a 4xx.
            assert status in (400, 422, 500), f"{what} ({submit.__name__}): {message}"
            assert needle in message, (f"{what} ({submit.__name__}): refused for another "
                                       f"reason:\n{message}")


def test_apply_refuses_duplicate_list_keys(api):
    """Two ports with one containerPort and protocol: a create admits it
    with a warning, a server-side apply refuses it."""
    obj = deployment("twice")
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080, "name": "http"},
                          {"containerPort": 8080, "name": "metrics"}]
    status, body = api.apply(obj, namespace=NAMESPACE, dry_run=True)
    assert status in (400, 422, 500), f"admitted ({status})"
    assert "duplicate" in refusal(status, body), refusal(status, body)


def test_dry_run_reports_warnings(api):
    """Without Strict an unknown field is dropped with a warning, and a pod
    template the namespace's "restricted" pod security level forbids is
    admitted with one: both reach api.warnings, which the chart test
    requires to be empty."""
    unknown_field = deployment("lenient")
    unknown_field["spec"]["replica"] = 2
    status, body = api.create(unknown_field, namespace=NAMESPACE, dry_run=True, strict=False)
    assert status == 201, refusal(status, body)
    assert any("replica" in w for w in api.warnings), api.warnings
    root = deployment("root")
    root["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    status, body = api.create(root, namespace=NAMESPACE, dry_run=True)
    assert status == 201, refusal(status, body)
    assert any("restricted" in w for w in api.warnings), api.warnings


def test_apply_refuses_a_changed_selector(api):
    """What the upgrade test guards against: a Deployment's selector is
    immutable once the Deployment exists."""
    obj = deployment("selector")
    status, body = api.apply(obj, namespace=NAMESPACE)
    assert status in (200, 201), refusal(status, body)
    for labels in (obj["spec"]["selector"]["matchLabels"],
                   obj["spec"]["template"]["metadata"]["labels"]):
        labels["app.kubernetes.io/version"] = "99.0.0"
    status, body = api.apply(obj, namespace=NAMESPACE, dry_run=True)
    assert status == 422 and "immutable" in refusal(status, body), refusal(status, body)
