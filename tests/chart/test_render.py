"""The chart rendered and linted by the real Helm CLI, over the value profiles people use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import BASE_VALUES, CHART, ROOT, helm, kinds, render

PROFILES = {
    "defaults": [],
    "external redis": ["--set", "redis.enabled=false", "--set", "redis.external.url=rediss://redis.example:6380/0"],
    "external redis cluster": [
        "--set", "redis.enabled=false", "--set", "redis.external.url=redis://redis-cluster:6379",
        "--set", "redis.external.cluster=true",
    ],
    "operator off, monitoring on": [
        "--set", "operator.enabled=false", "--set", "serviceMonitor.enabled=true",
        "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
    ],
    "operator off, monitoring off": ["--set", "operator.enabled=false"],
    "hpa and network policy on": [
        "--set", "gateway.autoscaling.enabled=true", "--set", "gateway.networkPolicy.enabled=true",
    ],
    "keys auth, standard privacy": ["--set", "auth.mode=keys", "--set", "privacy.mode=standard"],
    "existing secrets, persistence": [
        "--set", "gateway.upstream.existingSecret=upstream", "--set", "redis.auth.existingSecret=redis",
        "--set", "redis.persistence.enabled=true", "--set", "tenantHashKey.existingSecret=tenant-hash",
    ],
}  # fmt: skip


@pytest.mark.parametrize("values", PROFILES.values(), ids=PROFILES.keys())
def test_lint_strict_passes(values: list[str]) -> None:
    settings = [
        arg for pair in zip(values[::2], values[1::2], strict=True) if pair[0] == "--set" for arg in pair
    ]
    helm("lint", "--strict", str(CHART), *BASE_VALUES, *settings)


def test_defaults_render_the_whole_product() -> None:
    found = kinds(render())
    assert found["Deployment"] == ["rel-secure-llm-gateway", "rel-secure-llm-gateway-operator"]
    assert found["StatefulSet"] == ["rel-secure-llm-gateway-redis"]
    assert "PodDisruptionBudget" in found and "HorizontalPodAutoscaler" not in found
    assert "ServiceMonitor" not in found  # the operator keeps it
    assert set(found["Secret"]) == {
        "rel-secure-llm-gateway-upstream",
        "rel-secure-llm-gateway-redis",
        "rel-secure-llm-gateway-tenant-hash",
    }


def test_profiles_switch_their_parts() -> None:
    external = kinds(render(*PROFILES["external redis"]))
    assert "StatefulSet" not in external
    monitoring = kinds(render(*PROFILES["operator off, monitoring on"]))
    assert monitoring["ServiceMonitor"] == ["rel-secure-llm-gateway"]
    assert monitoring["Deployment"] == ["rel-secure-llm-gateway"]
    assert "ClusterRole" not in monitoring
    assert "ServiceMonitor" not in kinds(
        render("--set", "operator.enabled=false", "--set", "serviceMonitor.enabled=true")
    )
    scaled = render(*PROFILES["hpa and network policy on"])
    assert "replicas" not in next(o for o in scaled if o["kind"] == "Deployment")["spec"]
    assert len(kinds(scaled)["NetworkPolicy"]) == 2
    secrets = kinds(render(*PROFILES["existing secrets, persistence"]))
    assert "Secret" not in secrets


def test_gateway_and_operator_share_the_hash_keys_and_the_privacy_mode() -> None:
    for values, mode, keys_required in (
        ([], "strict", False),
        (PROFILES["keys auth, standard privacy"], "standard", True),
    ):
        for obj in render(*values):
            if obj["kind"] == "Deployment":
                env = {e["name"]: e for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
                reference = env["TENANT_HASH_KEY"]["valueFrom"]["secretKeyRef"]
                assert reference == {"name": "rel-secure-llm-gateway-tenant-hash", "key": "tenant-hash-key"}
                key_secret = env["KEY_HASH_SECRET"]["valueFrom"]["secretKeyRef"]
                assert (key_secret["key"], key_secret["optional"]) == ("key-hash-secret", not keys_required)
                assert env["PRIVACY_MODE"]["value"] == mode


def is_hook(manifest: dict[str, Any]) -> bool:
    return "helm.sh/hook" in manifest["metadata"].get("annotations", {})


def test_the_operator_may_read_secrets_only_in_the_keys_auth_mode() -> None:
    def secret_rules(values: list[str]) -> list[dict[str, Any]]:
        [role] = [o for o in render(*values) if o["kind"] == "ClusterRole" and not is_hook(o)]
        return [rule for rule in role["rules"] if "secrets" in rule["resources"]]

    assert secret_rules([]) == []
    assert secret_rules(PROFILES["keys auth, standard privacy"]) == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    ]
    scoped = render("--set", "auth.mode=keys", "--set", "operator.watchNamespace=tenants")
    assert [
        rule
        for o in scoped
        if o["kind"] == "ClusterRole"
        for rule in o["rules"]
        if "secrets" in rule["resources"]
    ] == []
    [role] = [
        o for o in scoped if o["kind"] == "Role" and o["metadata"]["name"].endswith("-operator-api-keys")
    ]
    assert role["metadata"]["namespace"] == "tenants"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    [binding] = [
        o for o in scoped if o["kind"] == "RoleBinding" and o["metadata"]["name"] == role["metadata"]["name"]
    ]
    assert binding["subjects"][0]["name"] == "rel-secure-llm-gateway-operator"
    configmap = next(
        o
        for o in render("--set", "auth.mode=keys")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-gateway")
    )
    assert configmap["data"]["AUTH_MODE"] == "keys"


def test_the_generated_secret_holds_both_hash_keys() -> None:
    [secret] = [
        o for o in render() if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-tenant-hash")
    ]
    assert set(secret["data"]) == {"tenant-hash-key", "key-hash-secret"}
    assert secret["data"]["tenant-hash-key"] != secret["data"]["key-hash-secret"]


def test_the_redis_url_reaches_both_components() -> None:
    for values, expected in (([], "redis://:$(REDIS_PASSWORD)@rel-secure-llm-gateway-redis:6379/0"),
                             (PROFILES["external redis"], "rediss://redis.example:6380/0")):  # fmt: skip
        for obj in render(*values):
            if obj["kind"] == "Deployment":
                env = {
                    e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]
                }
                assert env["REDIS_URL"] == expected, obj["metadata"]["name"]


def test_a_redis_cluster_is_named_to_both_components() -> None:
    for values, expected in (([], None), (PROFILES["external redis"], None),
                             (PROFILES["external redis cluster"], "true")):  # fmt: skip
        deployments = [obj for obj in render(*values) if obj["kind"] == "Deployment"]
        assert sorted(d["metadata"]["name"] for d in deployments) == [
            "rel-secure-llm-gateway",
            "rel-secure-llm-gateway-operator",
        ]
        for obj in deployments:
            env = {e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env.get("REDIS_CLUSTER") == expected, obj["metadata"]["name"]


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    return specs + [o["spec"] for o in objects if o["kind"] == "Pod"]


@pytest.mark.parametrize("values", PROFILES.values(), ids=PROFILES.keys())
def test_every_container_runs_locked_down(values: list[str]) -> None:
    for spec in pod_specs(render(*values)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_only_the_operator_gets_a_service_account_token() -> None:
    for spec in pod_specs(render()):
        mounted = spec.get("automountServiceAccountToken", True)
        assert mounted == (spec.get("serviceAccountName", "").endswith("-operator"))


def test_the_gateway_outlives_its_own_shutdown_grace() -> None:
    gateway = next(o for o in render("--set", "gateway.shutdownGraceSeconds=45") if o["kind"] == "Deployment")
    spec = gateway["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > 45
    config = next(o for o in render("--set", "gateway.shutdownGraceSeconds=45") if o["kind"] == "ConfigMap")
    assert config["data"]["SHUTDOWN_GRACE_SECS"] == "45"


def test_the_chart_crds_are_the_projects_crds_byte_for_byte() -> None:
    project = {path.name: path.read_bytes() for path in (ROOT / "k8s" / "crd").glob("*.yaml")}
    chart = {path.name: path.read_bytes() for path in (CHART / "crds").glob("*.yaml")}
    assert sorted(chart) == [
        "tenantpolicies.gateway.secure-llm.dev.yaml",
        "tenantquotas.gateway.secure-llm.dev.yaml",
    ]
    assert chart == project


BAD = {
    "replicas 0": (
        ["--set", "gateway.replicaCount=0"],
        "gateway.replicaCount: Must be greater than or equal to 1",
    ),
    "unknown value": (["--set", "gatway.replicaCount=2"], "Additional property gatway is not allowed"),
    "no upstream key": (
        ["--set", "gateway.upstream.apiKey="],
        "gateway.upstream.apiKey (or gateway.upstream.existingSecret) is required",
    ),
    "external redis without url": (
        ["--set", "redis.enabled=false"],
        "redis.external.url is required when redis.enabled is false",
    ),
    "a cluster flag for the built-in redis": (
        ["--set", "redis.external.cluster=true"],
        "redis.external.cluster needs redis.enabled=false",
    ),
    "settings naming a cluster for the gateway only": (
        ["--set", "gateway.settings.REDIS_CLUSTER=true"],
        "gateway.settings",
    ),
    "bad pull policy": (["--set", "image.pullPolicy=Sometimes"], "image.pullPolicy"),
    "settings overriding the secret": (["--set", "gateway.settings.OPENAI_API_KEY=x"], "gateway.settings"),
    "settings overriding the privacy mode": (
        ["--set", "gateway.settings.PRIVACY_MODE=standard"],
        "gateway.settings",
    ),
    "unknown auth mode": (["--set", "auth.mode=oauth"], "auth.mode"),
}


@pytest.mark.parametrize(("values", "message"), BAD.values(), ids=BAD.keys())
def test_bad_values_are_refused(values: list[str], message: str) -> None:
    result = helm("template", "rel", str(CHART), *BASE_VALUES, *values, check=False)
    assert result.returncode != 0
    assert message in result.stderr


CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("values", PROFILES.values(), ids=PROFILES.keys())
def test_built_in_objects_pass_kubernetes_validate_strict(values: list[str], tmp_path: Path) -> None:
    objects = [o for o in render(*values) if o["kind"] not in CUSTOM_KINDS]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    tool = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(tool), "--strict", "--quiet", "-k", "1.36.0", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
