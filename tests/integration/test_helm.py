"""The Kubernetes chart (k8s/helm/todod): linted and rendered by the real
helm (4.3.2, built from its Go module), every rendered object validated
against the Kubernetes schemas (kubernetes-validate) and the Dapr objects
against Dapr 1.18's own CRDs, the todod.conf it renders checked by the
build's todod -t, the migration Job's command run against a real
PostgreSQL, and the Dapr components compared with the contrib/dapr files
the dapr-transport tests run."""

import glob
import json
import os
import re
import subprocess

import pytest
import yaml

from harness import ServiceUnavailable, helm, scalar
from harness.tls import make_ca
from harness.todod import SRCDIR, sanitizer_env

EX_OK = 0
EX_CONFIG = 78
NO_DATABASE = "postgresql://postgres@127.0.0.1:1/none"
NAMESPACE = "todod-ns"
RELEASE = "todod"
FULLNAME = "todod"  # the release name holds the chart's name

# Secret *names* that must appear only where a reference is expected, and
# values no rendering may ever contain.
SENTINELS = {
    "database": "sentinel-db-4a1f",
    "kafka_password": "sentinel-kafka-pw-77c2",
    "kafka_ca": "sentinel-kafka-ca-19be",
    "dapr_api": "sentinel-dapr-api-5d0e",
    "dapr_app": "sentinel-dapr-app-c3a8",
    "smtp": "sentinel-smtp-0b6d",
    "statestore": "sentinel-statestore-dsn-e1f0",
    "redis": "sentinel-redis-pw-aa93",
}

BASE = {"database": {"secretName": SENTINELS["database"], "secretKey": "url"}}


def merge(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


MONITORING = {"metrics": {"serviceMonitor": {"enabled": True},
                          "prometheusRule": {"enabled": True},
                          "grafanaDashboard": {"enabled": True}}}

# The variants a reviewer would install: one per transport, Dapr on each
# pub/sub backend, Kafka with SASL over TLS and a CA from a Secret.
VARIANTS = {
    "in-process": merge(BASE, MONITORING, {"transport": "in-process"}),
    "kafka-direct": merge(BASE, MONITORING, {
        "transport": "kafka-direct", "replicaCount": 3,
        "kafka": {"brokers": ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]}}),
    "kafka-direct-sasl-ssl": merge(BASE, MONITORING, {
        "transport": "kafka-direct", "replicaCount": 2,
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
        "kafka": {"brokers": ["kafka-0.kafka:9093"], "securityProtocol": "sasl_ssl",
                  "saslMechanism": "SCRAM-SHA-256", "username": "todod",
                  "passwordSecret": {"name": SENTINELS["kafka_password"], "key": "password"},
                  "caSecret": {"name": SENTINELS["kafka_ca"], "key": "ca.crt"}}}),
    "dapr": merge(BASE, MONITORING, {
        "transport": "dapr", "replicaCount": 3,
        "config": {"core": {"inbox": "dapr-state"}},
        "dapr": {"apiTokenSecret": SENTINELS["dapr_api"],
                 "appTokenSecret": SENTINELS["dapr_app"],
                 "statestore": {"dsnSecret": SENTINELS["statestore"]},
                 "secretNames": [SENTINELS["smtp"]]}}),
    "dapr-redis": merge(BASE, MONITORING, {
        "transport": "dapr", "replicaCount": 2,
        "autoscaling": {"enabled": True},
        "dapr": {"apiTokenSecret": SENTINELS["dapr_api"],
                 "appTokenSecret": SENTINELS["dapr_app"],
                 "pubsub": {"backend": "redis",
                            "redis": {"passwordSecret": SENTINELS["redis"]}}}}),
}

# Kinds whose schemas are not Kubernetes' own (CustomResourceDefinitions
# of Dapr and the Prometheus Operator): kubernetes-validate has none, so
# they are checked structurally below.
CRD_KINDS = {("dapr.io/v1alpha1", "Component"), ("dapr.io/v1alpha1", "Resiliency"),
             ("dapr.io/v1alpha1", "Configuration"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
             ("monitoring.coreos.com/v1", "PrometheusRule")}

_rendered = {}


def render(variant):
    if variant not in _rendered:
        _rendered[variant] = helm.template(VARIANTS[variant], release=RELEASE,
                                           namespace=NAMESPACE)
    return _rendered[variant]


def objects(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind, name=None):
    found = objects(docs, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} rendered"
    return found[0]


def deployment(docs):
    return one(docs, "Deployment", FULLNAME)


def container(docs, name="todod"):
    return next(c for c in deployment(docs)["spec"]["template"]["spec"]["containers"]
                if c["name"] == name)


def todod_conf(docs, name=FULLNAME):
    return one(docs, "ConfigMap", name)["data"]["todod.conf"]


def conf_sections(text):
    """todod.conf as {section: {key: value}} (the chart's quoting only)."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        current[key.strip()] = value
    return sections


# ---- helm lint, helm template, the schemas ---------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_passes_strictly(variant):
    res = helm.lint(VARIANTS[variant])
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "0 chart(s) failed" in res.stdout


def test_helm_lint_passes_with_the_chart_defaults():
    res = helm.lint(None)
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"


def schema_versions():
    """The oldest release the chart supports (Chart.yaml kubeVersion) and
    the newest kubernetes-validate knows."""
    versions = sorted(set(helm.kubernetes_versions()), key=lambda v: tuple(map(int, v.split("."))))
    with open(os.path.join(helm.CHART, "Chart.yaml")) as f:
        floor = re.match(r">=\s*(\d+\.\d+)", yaml.safe_load(f)["kubeVersion"]).group(1)
    oldest = next(v for v in versions if v.startswith(floor + "."))
    return [oldest, versions[-1]]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_object_is_valid_kubernetes(variant):
    docs = render(variant)
    builtin = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_KINDS]
    crds = [d for d in docs if (d["apiVersion"], d["kind"]) in CRD_KINDS]
    assert builtin and all(d["metadata"].get("name") for d in docs)
    for version in schema_versions():
        verdicts = helm.validate(builtin, version)
        bad = [v for v in verdicts if v["result"] != "valid"]
        assert not bad, f"Kubernetes {version}: {bad}"
        # The CRD kinds are unknown to the schemas: proof that they were
        # not quietly validated against nothing, and why they are checked
        # by hand.
        for v in helm.validate(crds, version):
            assert v["result"] == "no-schema", v
    for d in crds:
        assert set(d) <= {"apiVersion", "kind", "metadata", "spec", "scopes", "auth"}, d
        assert isinstance(d["spec"], dict) and d["spec"], d
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), d
    kinds = {d["kind"] for d in docs}
    assert {"ConfigMap", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget",
            "Job", "ServiceMonitor", "PrometheusRule"} <= kinds
    if VARIANTS[variant].get("autoscaling", {}).get("enabled"):
        assert "HorizontalPodAutoscaler" in kinds
    if VARIANTS[variant]["transport"] == "dapr":
        assert {"Component", "Resiliency", "Configuration", "Role", "RoleBinding"} <= kinds


def test_values_the_chart_must_refuse():
    assert "one replica" in helm.template_error(merge(BASE, {"replicaCount": 2}))
    assert "transport must be" in helm.template_error(merge(BASE, {"transport": "carrier-pigeon"}))
    assert "database.secretName" in helm.template_error({"database": {"secretName": ""}})
    assert "dapr-state" in helm.template_error(merge(BASE, {
        "config": {"core": {"inbox": "dapr-state"}}}))
    assert "sasl" in helm.template_error(merge(BASE, {
        "transport": "kafka-direct", "kafka": {"securityProtocol": "sasl_ssl"}}))
    assert "todod.conf duration" in helm.template_error(merge(BASE, {
        "config": {"core": {"drain_timeout": "1h30m"}}}))


# ---- the Deployment ----------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_probes_shutdown_and_hardening(variant):
    docs = render(variant)
    pod = deployment(docs)["spec"]["template"]["spec"]
    c = container(docs)
    conf = conf_sections(todod_conf(docs))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert conf["core"]["listen"] == f"0.0.0.0:{ports['http']}"

    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    # The start-up probe covers migrations (minutes), the liveness probe
    # only starts once it passed.
    s = c["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] >= 300

    drain = int(re.fullmatch(r"(\d+)s", conf["core"]["drain_timeout"]).group(1))
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > drain + int(sleep[1])

    sc, psc = c["securityContext"], pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert c["command"][-2:] == ["-c", "/etc/todod/todod.conf"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/todod"]["readOnly"] is True

    labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget", FULLNAME)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    svc = one(docs, "Service", FULLNAME)
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    if VARIANTS[variant]["transport"] == "in-process":
        assert deployment(docs)["spec"]["replicas"] == 1
        assert deployment(docs)["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_migrations_run_once_per_release_in_a_hook_job(variant):
    docs = render(variant)
    job = one(docs, "Job", f"{FULLNAME}-migrate")
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    cm = one(docs, "ConfigMap", f"{FULLNAME}-migrate")
    # The Job's configuration exists before the Job (hook weights).
    assert cm["metadata"]["annotations"]["helm.sh/hook"] == ann["helm.sh/hook"]
    weight = int(cm["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(ann["helm.sh/hook-weight"])
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["template"]["metadata"]["annotations"]["dapr.io/enabled"] == "false"
    (c,) = pod["containers"]
    assert c["command"][1:] == ["-c", "/etc/todod/todod.conf", "migrate"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # Not the Deployment's pods: none of them carries a migrate command.
    assert "migrate" not in container(docs)["command"]


def test_the_migration_job_migrates_a_real_database(todod_factory, database):
    """The Job's command line and configuration, run as the Job runs
    them: the schema is there afterwards, and a second run (the next
    release) has nothing left to do."""
    docs = render("kafka-direct")
    t = todod_factory(NO_DATABASE)
    conf = t.write_config(todod_conf(docs, f"{FULLNAME}-migrate"))
    (c,) = one(docs, "Job", f"{FULLNAME}-migrate")["spec"]["template"]["spec"]["containers"]
    argv = [t.binary] + ["-c" if a == "-c" else conf if a == "/etc/todod/todod.conf" else a
                         for a in c["command"][1:]]
    env = dict(sanitizer_env(), TODOD_DATABASE_URL=database)
    for run in (1, 2):
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == EX_OK, f"run {run}: {res.stdout}\n{res.stderr}"
    assert scalar(database, "SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'tasks'") == 1


# ---- secrets -------------------------------------------------------------------------

def test_no_secret_value_anywhere(tmp_path):
    """Every secret arrives by reference: no Secret object, no literal in
    todod.conf, environment variables from secretKeyRef only, and each
    sentinel Secret name only in a place that names a Secret."""
    for variant in sorted(VARIANTS):
        text = helm.template_text(VARIANTS[variant], release=RELEASE, namespace=NAMESPACE)
        docs = [d for d in yaml.safe_load_all(text) if d]
        assert not objects(docs, "Secret"), variant
        for d in docs:
            for c in (d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])):
                for e in c.get("env", []):
                    if re.search(r"PASSWORD|TOKEN|DATABASE|SECRET", e["name"]):
                        assert "value" not in e and "secretKeyRef" in e["valueFrom"], (variant, e)
        for name in ("todod", "todod-migrate"):
            for section in conf_sections(todod_conf(docs, name)).values():
                for key, value in section.items():
                    if re.search(r"password|token|database|secret", key) and \
                            key != "secret_timeout":
                        assert value.startswith("env:"), (variant, key, value)
        # Wherever a sentinel name appears, the line names a Secret.
        for line in text.splitlines():
            for what, sentinel in SENTINELS.items():
                if sentinel in line:
                    assert re.search(r"\bname: |secretName: |dapr\.io/(api|app)-token-secret: |"
                                     r"key: |^\s*- \"?sentinel-", line), (variant, what, line)
        # Components take secrets from the store, never inline.
        for comp in objects(docs, "Component"):
            for m in comp["spec"]["metadata"]:
                if re.search(r"(?i)password|token|connectionString|dsn", m["name"]):
                    assert "secretKeyRef" in m and "value" not in m, (variant, m)


# ---- todod -t ---------------------------------------------------------------------

def todod_t(todod_factory, tmp_path, docs, drop_env=()):
    """`todod -t` on the ConfigMap's todod.conf, with only plugin_dir (the
    image's path) and the CA path (a mounted Secret) pointed at this
    build, in the environment the Deployment gives the container (each
    secret replaced by a stand-in), less `drop_env`."""
    text = todod_conf(docs)
    sections = conf_sections(text)
    plugins = [s.split(".", 1)[1] for s in sections if s.startswith("plugin.")]
    t = todod_factory(NO_DATABASE, plugins={p: {} for p in plugins})
    assert sections["core"]["plugin_dir"] == "/usr/lib/todod"
    text = text.replace("plugin_dir = /usr/lib/todod", f"plugin_dir = {t.plugin_dir}")
    if "ssl_ca" in sections.get("plugin.kafka-direct", {}):
        ca = make_ca(str(tmp_path))
        text = text.replace(sections["plugin.kafka-direct"]["ssl_ca"], ca.cert)
    t.write_config(text)
    env = dict(sanitizer_env())
    for e in container(docs)["env"]:
        assert "secretKeyRef" in e["valueFrom"]
        env[e["name"]] = f"value-of-{e['valueFrom']['secretKeyRef']['name']}"
    env["TODOD_DATABASE_URL"] = NO_DATABASE
    for name in drop_env:
        del env[name]
    res = subprocess.run([t.binary, "-t", "-c", t.config_path], env=env, capture_output=True,
                         text=True, timeout=60)
    return res, text


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_rendered_todod_conf_passes_todod_t(todod_factory, tmp_path, variant):
    docs = render(variant)
    sections = conf_sections(todod_conf(docs))
    transport = VARIANTS[variant]["transport"]
    assert ("plugin.kafka-direct" in sections) == (transport == "kafka-direct")
    assert ("plugin.dapr-transport" in sections) == (transport == "dapr")
    res, text = todod_t(todod_factory, tmp_path, docs)
    assert res.returncode == EX_OK, f"{text}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    # Secrets are printed as such, so none of the stand-ins shows.
    assert "value-of-" not in res.stdout
    # Without the environment the Deployment gives it, the file is refused.
    res, _ = todod_t(todod_factory, tmp_path, docs, drop_env=["TODOD_DATABASE_URL"])
    assert res.returncode == EX_CONFIG and "TODOD_DATABASE_URL" in res.stderr, res.stderr


def test_todod_t_refuses_what_the_chart_cannot_check(todod_factory, tmp_path):
    """The chart passes config values through; todod -t is what judges
    them (a misspelt key, a value out of range)."""
    for bad, word in (({"plugins": {"email": {"smtp_host": "mail"}}}, "smtp_host"),
                      ({"core": {"db_pool_size": 1000}}, "db_pool_size")):
        docs = helm.template(merge(BASE, {"config": bad}))
        res, _ = todod_t(todod_factory, tmp_path, docs)
        assert res.returncode == EX_CONFIG and word in res.stderr, res.stderr


def test_values_reach_todod_conf_as_written():
    docs = helm.template(merge(BASE, {"config": {
        "core": {"log_level": "debug", "drain_timeout": "45s", "instance": "pod-a"},
        "plugins": {"email": {"from": "Todo # reminders <todod@example.org>",
                              "server": "smtp://mail.example.org:587"}}}}))
    conf = conf_sections(todod_conf(docs))
    assert conf["core"]["log_level"] == "debug"
    assert conf["core"]["instance"] == "pod-a"
    assert conf["plugin.email"]["from"] == "Todo # reminders <todod@example.org>"
    assert '"Todo # reminders <todod@example.org>"' in todod_conf(docs)
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 45


# ---- kafka-direct -------------------------------------------------------------------

def test_kafka_direct_brokers_sasl_and_ca_from_a_secret():
    docs = render("kafka-direct-sasl-ssl")
    kafka = conf_sections(todod_conf(docs))["plugin.kafka-direct"]
    assert kafka["brokers"] == "kafka-0.kafka:9093"
    assert kafka["security_protocol"] == "sasl_ssl"
    assert kafka["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kafka["username"] == "todod"
    assert kafka["password"] == "env:TODOD_KAFKA_PASSWORD"
    c = container(docs)
    env = {e["name"]: e for e in c["env"]}
    assert env["TODOD_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": SENTINELS["kafka_password"], "key": "password"}
    # Its own mount point: nothing mounts inside the ConfigMap's volume.
    (mount,) = [m for m in c["volumeMounts"] if kafka["ssl_ca"].startswith(m["mountPath"] + "/")]
    vol = next(v for v in deployment(docs)["spec"]["template"]["spec"]["volumes"]
               if v["name"] == mount["name"])
    assert vol["secret"]["secretName"] == SENTINELS["kafka_ca"]
    assert mount["readOnly"] is True
    assert kafka["ssl_ca"] == f"{mount['mountPath']}/{vol['secret']['items'][0]['path']}"
    plain = conf_sections(todod_conf(render("kafka-direct")))["plugin.kafka-direct"]
    assert plain["brokers"] == "kafka-0.kafka:9092, kafka-1.kafka:9092"
    assert plain["security_protocol"] == "plaintext"
    assert "password" not in plain and "ssl_ca" not in plain


# ---- dapr -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["dapr", "dapr-redis"])
def test_dapr_annotations_scopes_and_rbac(variant):
    docs = render(variant)
    values = VARIANTS[variant]
    tmpl = deployment(docs)["spec"]["template"]
    ann = tmpl["metadata"]["annotations"]
    c = container(docs)
    port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
    assert ann["dapr.io/enabled"] == "true"
    assert ann["dapr.io/app-id"] == "todod"
    assert ann["dapr.io/app-port"] == str(port)
    assert ann["dapr.io/app-protocol"] == "http"
    assert ann["dapr.io/log-level"] == "info"
    assert ann["dapr.io/api-token-secret"] == SENTINELS["dapr_api"]
    assert ann["dapr.io/app-token-secret"] == SENTINELS["dapr_app"]
    for k in ("cpu-request", "cpu-limit", "memory-request", "memory-limit"):
        assert ann[f"dapr.io/sidecar-{k}"], k
    one(docs, "Configuration", ann["dapr.io/config"])
    env_var = "TODOD_REDIS_HOST" if variant == "dapr-redis" else "TODOD_KAFKA_BROKERS"
    assert ann["dapr.io/env"].startswith(env_var + "=")

    # todod talks to its own sidecar with the tokens daprd has.
    dapr = conf_sections(todod_conf(docs))["plugin.dapr-transport"]
    # The injector gives daprd HTTP port 3500, whatever the pod says.
    assert dapr["http_endpoint"] == "http://127.0.0.1:3500"
    assert dapr["pubsub"] == "pubsub"
    assert dapr["api_token"] == "env:DAPR_API_TOKEN"
    assert dapr["app_token"] == "env:APP_API_TOKEN"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["DAPR_API_TOKEN"] == {"name": SENTINELS["dapr_api"], "key": "token"}
    assert env["APP_API_TOKEN"] == {"name": SENTINELS["dapr_app"], "key": "token"}

    for d in objects(docs, "Component") + objects(docs, "Resiliency"):
        assert d["scopes"] == ["todod"], d["metadata"]["name"]
    names = {d["metadata"]["name"] for d in objects(docs, "Component")}
    assert names == {"pubsub", "statestore", "secretstore"}
    assert one(docs, "Component", "secretstore")["spec"]["type"] == "secretstores.kubernetes"

    role = one(docs, "Role")
    (rule,) = role["rules"]
    assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"]
    expected = {values["dapr"].get("statestore", {}).get("dsnSecret", "todod-statestore-dsn")}
    expected |= set(values["dapr"].get("secretNames", []))
    if variant == "dapr-redis":
        expected.add(SENTINELS["redis"])
    assert set(rule["resourceNames"]) == expected
    binding = one(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": NAMESPACE,
                                    "name": tmpl["spec"]["serviceAccountName"]}]
    assert tmpl["spec"]["automountServiceAccountToken"] is True


def test_dapr_role_never_grants_every_secret():
    docs = helm.template(merge(BASE, {"transport": "dapr",
                                      "dapr": {"statestore": {"enabled": False}}}))
    assert one(docs, "Role")["rules"] == []


def test_no_dapr_objects_without_the_dapr_transport():
    for variant in ("in-process", "kafka-direct"):
        docs = render(variant)
        assert not [d for d in docs if d["apiVersion"].startswith("dapr.io/")]
        assert not [k for k in deployment(docs)["spec"]["template"]["metadata"]["annotations"]
                    if k.startswith("dapr.io/")]


def contrib(name):
    with open(os.path.join(SRCDIR, "contrib", "dapr", name)) as f:
        return yaml.safe_load(f)


# The documented differences (doc/kubernetes.md, "Dapr resources"): the
# chart adds `scopes` and labels, and names the Resiliency and the
# Configuration after the release; secret names are values whose defaults
# are the contrib files' names.
@pytest.mark.parametrize("variant,file", [
    ("dapr", "pubsub-kafka.yaml"), ("dapr-redis", "pubsub-redis.yaml"),
    ("dapr", "statestore-postgresql.yaml"), ("dapr", "secretstore-kubernetes.yaml"),
    ("dapr", "resiliency.yaml"), ("dapr", "config.yaml")])
def test_dapr_resources_are_the_contrib_files(variant, file):
    want = contrib(file)
    # The chart's defaults, only the backend chosen.
    backend = VARIANTS[variant]["dapr"].get("pubsub", {}).get("backend", "kafka")
    values = merge(BASE, {"transport": "dapr", "dapr": {"pubsub": {"backend": backend}}})
    docs = helm.template(values)
    if want["kind"] == "Component":
        got = one(docs, "Component", want["metadata"]["name"])
        assert got["spec"]["type"] == want["spec"]["type"]
        assert got["spec"]["version"] == want["spec"]["version"]
        assert [m["name"] for m in got["spec"]["metadata"]] == \
            [m["name"] for m in want["spec"]["metadata"]]
    else:
        got = one(docs, want["kind"])
    # Everything else the same, to the value; but a Configuration's
    # nameResolution, which Dapr's CRD wants with a version and a
    # configuration (tested against the CRD below).
    got_spec = dict(got["spec"])
    if want["kind"] == "Configuration":
        resolver = dict(got_spec.pop("nameResolution"))
        assert resolver.pop("version") == "v1" and resolver.pop("configuration") == {}
        assert resolver == want["spec"]["nameResolution"]
        want = dict(want, spec={k: v for k, v in want["spec"].items() if k != "nameResolution"})
    assert got_spec == want["spec"]
    assert got.get("auth") == want.get("auth")
    assert set(got) - set(want) <= {"scopes"}


def test_dapr_kafka_sasl_variant_follows_the_contrib_comment():
    docs = helm.template(merge(BASE, {"transport": "dapr", "dapr": {"pubsub": {"kafka": {
        "sasl": {"enabled": True, "tls": False}}}}}))
    comp = one(docs, "Component", "pubsub")
    meta = {m["name"]: m for m in comp["spec"]["metadata"]}
    assert meta["authType"]["value"] == "password"
    assert meta["saslMechanism"]["value"] == "SHA-512"
    assert meta["saslPassword"]["secretKeyRef"] == {"name": "todod-kafka-password",
                                                    "key": "todod-kafka-password"}
    assert meta["disableTls"]["value"] == "true"
    assert comp["auth"] == {"secretStore": "secretstore"}
    (rule,) = one(docs, "Role")["rules"]
    assert "todod-kafka-password" in rule["resourceNames"]


# ---- Prometheus and Grafana ---------------------------------------------------------

def source_metric_names():
    names = set()
    for path in glob.glob(os.path.join(SRCDIR, "core", "*.c")) + \
            glob.glob(os.path.join(SRCDIR, "plugins", "*", "*.c")):
        with open(path) as f:
            names.update(re.findall(r'"(todod_[a-z_]+)"', f.read()))
    return names


def used_metrics(expr):
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\btodod_[a-z_]+", expr)}


def doc_anchors():
    with open(os.path.join(SRCDIR, "doc", "kubernetes.md")) as f:
        headings = re.findall(r"^#+\s+(.*)$", f.read(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


ROLLBACK_TRIGGERS = {
    # alert: (threshold in the expression, for)
    "TododPublishLatencyHigh": ("> 0.2", "5m"),
    "TododConsumerLagHigh": ("> 1000", "10m"),
    "TododErrorRateHigh": ("> 0.01", "5m"),
    "TododSidecarMemoryHigh": ("> 268435456", "2m"),
}


@pytest.mark.parametrize("variant", ["in-process", "kafka-direct", "dapr"])
def test_alerts_use_real_metrics_and_name_their_runbook(variant):
    docs = render(variant)
    rule = one(docs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    expected = {"TododPublishLatencyHigh", "TododErrorRateHigh", "TododDeadLetters"}
    if variant == "kafka-direct":
        expected |= {"TododConsumerLagHigh", "TododEventsRejected"}
    if variant == "dapr":
        expected |= {"TododSidecarMemoryHigh", "TododEventsRejected"}
    assert set(alerts) == expected
    known, anchors = source_metric_names(), doc_anchors()
    for name, r in alerts.items():
        assert used_metrics(r["expr"]) <= known, (name, used_metrics(r["expr"]) - known)
        assert f'namespace="{NAMESPACE}"' in r["expr"], name
        url = r["annotations"]["runbook_url"]
        assert url.split("#")[1] in anchors, (name, url)
        if name in ROLLBACK_TRIGGERS:
            threshold, duration = ROLLBACK_TRIGGERS[name]
            assert threshold in r["expr"] and r["for"] == duration, (name, r)
    publish = {"in-process": "todod_outbox_publish_latency_seconds",
               "kafka-direct": "todod_kafka_produce_latency_seconds",
               "dapr": "todod_dapr_publish_latency_seconds"}[variant]
    assert publish + "_bucket" in alerts["TododPublishLatencyHigh"]["expr"]
    assert 'code=~"5.."' in alerts["TododErrorRateHigh"]["expr"]
    sm = one(docs, "ServiceMonitor")
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert sm["spec"]["selector"]["matchLabels"].items() <= \
        one(docs, "Service")["metadata"]["labels"].items()


def test_grafana_dashboard_panels_and_label():
    docs = render("dapr")
    cm = one(docs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["todod.json"])
    titles = [p["title"] for p in dash["panels"]]
    for words in ("request", "latency", "outbox depth", "outbox age", "publish latency",
                  "consumer lag", "reminders fired", "dead letters"):
        assert any(words in t.lower() for t in titles), (words, titles)
    known = source_metric_names()
    for p in dash["panels"]:
        for target in p["targets"]:
            assert used_metrics(target["expr"]) <= known, (p["title"], target["expr"])
    off = helm.template(BASE)
    assert not objects(off, "ServiceMonitor") and not objects(off, "PrometheusRule")
    assert not objects(off, "ConfigMap", f"{FULLNAME}-dashboard")


# ---- values.yaml documents every key ---------------------------------------------------

@pytest.mark.parametrize("section", ["core", "mcp-tools", "reminders", "email", "recurrence",
                                     "kafka-direct", "dapr-transport"])
def test_values_yaml_names_every_option(todod_factory, section):
    """Each option `todod --help-plugin` lists for the sections the chart
    writes is named in values.yaml (set, or said where it comes from)."""
    plugins = {} if section == "core" else {section: {}}
    t = todod_factory(NO_DATABASE, plugins=plugins)
    res = t.cli("--help-plugin", section)
    assert res.returncode == EX_OK, res.stderr
    keys = [line.split()[0] for line in res.stdout.splitlines()[2:] if line.strip()]
    assert keys, res.stdout
    with open(os.path.join(helm.CHART, "values.yaml")) as f:
        text = f.read()
    missing = [k for k in keys if not re.search(r"\b%s\b" % re.escape(k.removesuffix("<name>").rstrip(".")),
                                                text)]
    assert not missing, f"[{section}] keys values.yaml does not name: {missing}"


def test_dapr_annotations_are_ones_the_injector_knows():
    """Every dapr.io/ annotation the chart sets is one Dapr 1.18's sidecar
    injector reads: its source is in the module cache contrib/build-dapr.sh
    filled (a misspelt annotation is silently ignored by the injector)."""
    source = os.path.join(helm.dapr_source_dir(), "pkg", "injector", "annotations",
                          "annotations.go")
    if not os.path.exists(source):
        raise ServiceUnavailable(f"no Dapr 1.18.0 source at {source}: run contrib/build-dapr.sh")
    with open(source) as f:
        known = set(re.findall(r'"(dapr\.io/[a-z0-9-]+)"', f.read()))
    assert "dapr.io/app-id" in known
    for variant in ("dapr", "dapr-redis"):
        ann = deployment(render(variant))["spec"]["template"]["metadata"]["annotations"]
        used = {k for k in ann if k.startswith("dapr.io/")}
        assert used <= known, used - known
    job = one(render("dapr"), "Job", f"{FULLNAME}-migrate")
    assert set(job["spec"]["template"]["metadata"]["annotations"]) <= known


@pytest.mark.parametrize("variant", ["dapr", "dapr-redis"])
def test_dapr_objects_match_dapr_crds(variant):
    """The Dapr objects against the openAPIV3Schema of Dapr 1.18's own
    CRDs (from its module, as build-dapr.sh downloaded it), undeclared
    fields counting as errors."""
    dapr = [d for d in render(variant) if d["apiVersion"].startswith("dapr.io/")]
    verdicts = helm.validate_crd_objects(dapr, helm.dapr_crds())
    assert len(verdicts) >= 5
    bad = [v for v in verdicts if v["result"] != "valid"]
    assert not bad, bad
    # The check sees a misspelt field.
    broken = dict(dapr[0], spec=dict(dapr[0]["spec"], verison="v1"))
    (verdict,) = helm.validate_crd_objects([broken], helm.dapr_crds())
    assert verdict["result"] == "invalid" and "verison" in verdict["message"], verdict
