"""The pure functions the components are built from: they refuse what would weaken the platform."""

import dataclasses

import pytest
import yaml

import harness
from heracles_pulumi import policies
from heracles_pulumi.encryption import render_encryption_configuration
from heracles_pulumi.eso import eso_chart_values
from heracles_pulumi.server_config import AuditDevice, ServerSpec, chart_values, ReleaseSpec, hcl_string, render_server_hcl

SPEC = ServerSpec(flavour="openbao", release="vault", namespace="vault", cluster_name="heracles-test",
                  kms_region="eu-central-1", kms_key_id="arn:aws:kms:eu-central-1:123456789012:key/k",
                  audit_devices=(AuditDevice("file", "file", "all requests", (("mode", "0600"),)),))


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_raft_needs_an_odd_number_of_at_least_three_voters(replicas):
    with pytest.raises(ValueError, match="odd number"):
        render_server_hcl(dataclasses.replace(SPEC, replicas=replicas))


def test_a_config_the_chart_would_rewrite_is_refused():
    with pytest.raises(ValueError, match="HOSTNAME"):
        render_server_hcl(dataclasses.replace(SPEC, cluster_name="HOSTNAME-cluster"))


def test_seal_without_key_is_refused():
    with pytest.raises(ValueError, match="kms_key_id"):
        render_server_hcl(dataclasses.replace(SPEC, kms_key_id=""))


def test_hcl_strings_cannot_start_templates():
    assert hcl_string("a${b}%{c}\"") == '"a$${b}%%{c}\\""'


def test_pdb_keeps_a_quorum_for_five_voters():
    values = chart_values(dataclasses.replace(SPEC, replicas=5), ReleaseSpec(image_tag="x", service_account_annotations=()))
    assert values["server"]["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": 2}


def test_eso_refuses_a_single_replica():
    with pytest.raises(ValueError, match="at least 2 replicas"):
        eso_chart_values(1, "external-secrets", "arn:aws:iam::1:role/x", False)


def test_key_policy_needs_an_administrator_and_never_gives_admins_use():
    with pytest.raises(ValueError):
        policies.key_policy([], [])
    document = policies.key_policy(["arn:aws:iam::1:role/admin"], [policies.KeyGrant("Use", [], ["kms:Decrypt"])])
    assert len(document["Statement"]) == 1  # a grant without principals is dropped, not widened
    assert not set(policies.KEY_ADMIN_ACTIONS) & policies.KMS_USE_ACTIONS
    assert "kms:DisableKeyRotation" not in policies.KEY_ADMIN_ACTIONS


def test_eso_policy_needs_a_prefix():
    with pytest.raises(ValueError, match="prefix"):
        policies.eso_read_policy("aws", "eu-central-1", "123456789012", "/")


def test_irsa_trust_accepts_the_issuer_with_or_without_scheme():
    with_scheme = policies.irsa_trust_policy("arn:p", "https://oidc.example/id/X", "ns", "sa")
    assert with_scheme == policies.irsa_trust_policy("arn:p", "oidc.example/id/X", "ns", "sa")
    assert with_scheme["Statement"][0]["Condition"]["StringEquals"] == {
        "oidc.example/id/X:sub": "system:serviceaccount:ns:sa", "oidc.example/id/X:aud": "sts.amazonaws.com"}


def test_encryption_configuration_is_kms_v2_for_secrets_with_identity_last():
    document = yaml.safe_load(render_encryption_configuration("heracles-kms"))
    assert document["resources"][0]["providers"] == [
        {"kms": {"apiVersion": "v2", "name": "heracles-kms", "endpoint": "unix:///var/run/kmsplugin/socket.sock",
                 "timeout": "3s"}},
        {"identity": {}}]


def test_secure_stack_values_reach_the_program_as_secrets(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        "name: p\nruntime: python\nconfig:\n  token:\n    type: string\n    secret: true\n  plain:\n    type: string\n")
    (project / "Pulumi.s.yaml").write_text("config:\n  p:token:\n    secure: v1:AAAA\n  p:plain:\n    secure: v1:BBBB\n")
    monkeypatch.setattr(harness, "PULUMI_DIR", str(tmp_path))
    with pytest.raises(harness.StackConfigError, match="p:plain holds a secure: value"):
        harness.stack_config("proj", "s")
    (project / "Pulumi.s.yaml").write_text("config:\n  p:token:\n    secure: v1:AAAA\n  p:plain: x\n")
    name, config, secret_keys = harness.stack_config("proj", "s")
    assert name == "p" and secret_keys == ["p:token"] and config["p:token"].startswith("mock-secure-value-of-")
