"""skaffold.yaml against skaffold's official v4beta14 JSON schema, and against what the repo holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "schemas" / "skaffold-v4beta14.schema.json"


def config() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "skaffold.yaml").read_text()))


def test_skaffold_yaml_is_valid_v4beta14() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(config()), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_an_invalid_config_is_caught_by_the_schema() -> None:
    broken = {**config(), "deploy": {"helm": {"releases": [{"chartPath": 3}]}}}
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_it_points_at_files_that_exist_and_the_built_image() -> None:
    skaffold = config()
    [artifact] = skaffold["build"]["artifacts"]
    assert (ROOT / artifact["docker"]["dockerfile"]).is_file()
    releases = skaffold["manifests"]["helm"]["releases"]
    assert [r["name"] for r in releases] == ["openaimock", "slg"]
    for release in releases:
        assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
        assert release["setValueTemplates"]["image.repository"] == "{{.IMAGE_REPO_secure_llm_gateway}}"
        assert release["setValueTemplates"]["image.tag"] == "{{.IMAGE_TAG_secure_llm_gateway}}"
        for values in release.get("valuesFiles", []):
            assert (ROOT / values).is_file()
    assert [p["name"] for p in skaffold["profiles"]] == ["kind", "ci"]
    assert skaffold["build"]["local"]["push"] is False


def test_helm_alone_deploys_so_nothing_is_applied_twice() -> None:
    """A kubectl deployer beside helm re-applied the rendered chart: its generated Secrets changed."""
    skaffold = config()
    assert skaffold["deploy"] == {"helm": {}}
    assert "rawYaml" not in skaffold["manifests"] and "kustomize" not in skaffold["manifests"]


def test_the_build_needs_neither_buildkit_nor_buildx() -> None:
    """With useBuildkit true skaffold adds ``--load``, a buildx flag; unset, it builds through the API."""
    skaffold = config()
    assert "useBuildkit" not in skaffold["build"]["local"]
    for profile in skaffold["profiles"]:
        assert "useBuildkit" not in profile.get("build", {}).get("local", {}), profile["name"]
