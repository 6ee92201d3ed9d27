"""The delivery objects against the real specifications, since no Kubernetes API server runs here.

Core kinds through kubernetes-validate (the stacks' Kubernetes version, strict), ESO / Prometheus Operator /
cert-manager kinds through the upstream CRD schemas of the pinned versions (tests/data/crds), and checkov over
the very files `make manifests` writes, with no failed check (reviewed skips: tests/data/checkov-skips.yml).
"""

import os
import sys

import pytest

import harness
import k8s_spec

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "pulumi"))
import manifests  # noqa: E402  pylint: disable=wrong-import-position,import-error


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every stack's manifests in one folder each (checkov runs once over all of them)."""
    root = tmp_path_factory.mktemp("manifests")
    objects = {}
    for stack in harness.STACKS:
        objects[stack] = manifests.render(stack)
        manifests.write(objects[stack], str(root / stack))
    return root, objects


def test_the_stack_pins_the_kubernetes_version_we_validate_against():
    schema = harness.project_schema("platform")[1]
    assert "v" + schema["heracles-platform:clusterVersion"]["default"] == "v" + k8s_spec.K8S_VERSION.rsplit(".", 1)[0]


def test_every_object_is_valid_for_its_schema(written, stack):
    objects = written[1]
    assert objects[stack]
    assert k8s_spec.validate_all(objects[stack]) == {}


def test_checkov_finds_no_failed_check(written):
    root, objects = written
    result = k8s_spec.run_checkov(str(root), skips=k8s_spec.load_checkov_skips())
    assert result["parsing_errors"] == []
    assert result["failed"] == [], k8s_spec.checks_by_id(result["failed"])
    assert len(result["passed"]) > 0
    print("checkov: %d passed, %d skipped (reviewed), 0 failed over %d objects"
          % (len(result["passed"]), len(result["skipped"]), sum(len(v) for v in objects.values())))
