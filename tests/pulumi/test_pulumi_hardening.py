"""Hardening invariants of pulumi/platform (issue 14, items 4 and 5), asserted on what is registered.

Two kinds of runs:

* the platform program per stack (``runs.platform``), for everything the stacks deploy today: the node launch
  template, control-plane logs, managed add-ons, access mode, chart values (requests/limits, PriorityClass, zone
  spread, the TLS-reload sidecar) and, where a stack's deployment facts ask for them and the program passes them on,
  Object Lock, replication, access entries and the account-root key statement;
* the components alone under ``pulumi.runtime.set_mocks`` (``run_components``) with every option switched on, for
  what no stack switches on yet (access entries with an explicit deployer entry, the log group's own key, the
  account-root statement on every key, Object Lock and cross-region replication of the backup bucket).

A stack-level check whose feature the program does not pass on yet is reported as xfail with the reason, so it turns
into a real check the moment the wiring lands.
"""

import contextvars
import json
import os
import re

import pulumi
import pulumi.runtime
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.sync_await import _sync_await

import harness
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from harness import unwrap
from heracles_pulumi import policies
from heracles_pulumi.backup import BackupArgs, VaultBackup
from heracles_pulumi.cluster import Cluster, ClusterArgs
from heracles_pulumi.iam import OidcProvider
from heracles_pulumi.server_config import ServerSpec
from heracles_pulumi.tls_reload import reload_script
from heracles_pulumi.vault_release import VaultCluster, VaultClusterArgs
from runs import platform

P = "heracles-platform:"
DATA_DIR = os.path.join(harness.REPO_ROOT, "vault")
KEY = "aws:kms/key:Key"
RELEASE = "kubernetes:helm.sh/v3:Release"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ADDON = "aws:eks/addon:Addon"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
BUCKET = "aws:s3/bucket:Bucket"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POD_OWNERS = ("kubernetes:batch/v1:CronJob", "kubernetes:batch/v1:Job", "kubernetes:apps/v1:Deployment",
              "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet")
ALL_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
REQUIRED_ADDONS = {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
EKS_POLICY = "arn:aws:eks::aws:cluster-access-policy/"
# The user-defined PriorityClass range ends at 1e9; system-cluster-critical is 2e9.
MAX_USER_PRIORITY = 1000000000


# --- helpers -------------------------------------------------------------------------------------------------------
def cfg(run, key):
    value = run.config[key if ":" in key else P + key]
    try:
        return json.loads(value)
    except ValueError:
        return value


def release(run, chart):
    found = [res for res in run.of_type(RELEASE) if res.inputs["chart"] == chart]
    assert len(found) == 1, [res.inputs["chart"] for res in run.of_type(RELEASE)]
    return unwrap(found[0].inputs)


def vault_release(run):
    return release(run, cfg(run, "vaultFlavour"))


def key_policies(run):
    return {res.name: json.loads(res.inputs["policy"]) for res in run.of_type(KEY)}


def root_statements(policy):
    return [statement for statement in policy["Statement"]
            if any(str(arn).endswith(":root") for arn in _as_list(statement.get("Principal", {}).get("AWS")))]


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def quantity(value):
    """A Kubernetes quantity as a float (cpu in cores, memory in bytes)."""
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G)?", str(value))
    assert match, "not a quantity: %r" % (value,)
    scale = {None: 1, "m": 1e-3, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 1e3, "M": 1e6,
             "G": 1e9}[match.group(2)]
    return float(match.group(1)) * scale


def assert_bounded(resources, what):
    """Requests and limits for cpu and memory, each limit at least its request."""
    assert resources, "%s has no resources" % what
    for kind in ("requests", "limits"):
        assert set(resources.get(kind) or {}) >= {"cpu", "memory"}, "%s: %s lacks cpu or memory" % (what, kind)
    for name in ("cpu", "memory"):
        assert quantity(resources["limits"][name]) >= quantity(resources["requests"][name]), (what, name)


def expect_wired(condition, what):
    """xfail (with the reason) when the program does not pass a component option on yet; see the module doc."""
    if not condition:
        pytest.xfail("not wired in pulumi/platform/__main__.py yet: %s" % what)


# --- components alone, every option on ------------------------------------------------------------------------------
ACCOUNT = "444455556666"
REGION = "ap-northeast-1"
REPLICA_REGION = "ap-northeast-3"
ROOT = "arn:aws:iam::%s:root" % ACCOUNT
ADMIN = "arn:aws:iam::%s:role/hx-kms-admin" % ACCOUNT
DEPLOYER = "arn:aws:iam::%s:role/hx-deployer" % ACCOUNT
OPERATORS = ["arn:aws:iam::%s:role/hx-operator" % ACCOUNT, "arn:aws:iam::%s:role/hx-oncall" % ACCOUNT]
BUCKET_NAME = "hx-vault-snapshots-%s" % ACCOUNT
LOCK_DAYS = 14
KMS = dict(kms_admin_arns=[ADMIN, DEPLOYER], kms_deletion_window_days=30, kms_rotation_period_days=365,
           kms_account_root_arn=ROOT)


def run_components(build):
    """Register what ``build()`` creates under the mock monitor; return it as a ``harness.Run``."""
    mocks = harness.RecordingMocks(ACCOUNT)

    def go():
        pulumi_settings.set_root_resource(None)
        pulumi.runtime.set_all_config({}, [])
        pulumi.runtime.set_mocks(mocks, project="hardening", stack="components", preview=False)
        build()
        _sync_await(pulumi.runtime.stack.wait_for_rpcs())
        return harness.Run(project="components", stack="components", resources=list(mocks.resources))

    return contextvars.copy_context().run(go)


def cluster_args(**extra):
    args = dict(mode="create", name="hx", region=REGION, partition="aws", deployer_arn=DEPLOYER, protect=False,
                subnet_ids=["subnet-a", "subnet-c", "subnet-d"], node_instance_types=["m6i.large"],
                operator_role_arns=OPERATORS, bootstrap_creator_admin=False, log_kms=True, account_id=ACCOUNT,
                tags={"project": "heracles"}, **KMS)
    args.update(extra)
    return ClusterArgs(**args)


def backup_args(**extra):
    args = dict(cluster_name="hx", bucket_name=BUCKET_NAME, prefix="raft/", retention_days=30,
                noncurrent_retention_days=7, schedule="0 * * * *", namespace="vault", service_account="vault-backup",
                role_name="hx-backup", oidc=OidcProvider(arn="arn:aws:iam::%s:oidc-provider/x" % ACCOUNT,
                                                         issuer="https://oidc.example/x"),
                partition="aws", region=REGION, flavour="openbao", vault_image="quay.io/openbao/openbao:2.6.2",
                aws_cli_image="public.ecr.aws/aws-cli/aws-cli:2.27.50", vault_address="https://vault-active:8200",
                vault_ca_secret="vault-tls", vault_auth_mount="kubernetes-x", vault_auth_role="vault-backup",
                vault_audience="vault", restore_role_arns=list(OPERATORS), object_lock_days=LOCK_DAYS,
                replica_region=REPLICA_REGION, **KMS)
    args.update(extra)
    return BackupArgs(**args)


_COMPONENTS = {}


def components():
    """Cluster (create), VaultCluster and VaultBackup with every hardening option on (run once per session)."""
    if "run" not in _COMPONENTS:
        def build():
            cluster = Cluster("hx", cluster_args())
            provider = k8s.Provider("hx-k8s-test", kubeconfig="{}")
            VaultCluster("hx-vault", VaultClusterArgs(
                server=ServerSpec(flavour="openbao", release="vault", namespace="vault", cluster_name="hx",
                                  kms_region=REGION),
                chart_version="0.29.2", image_tag="2.6.2", role_name="hx-vault", oidc=cluster.oidc,
                tls_issuer_name="ca", **KMS), provider=provider)
            VaultBackup("hx-backup", backup_args(), provider=provider)
        _COMPONENTS["run"] = run_components(build)
    return _COMPONENTS["run"]


# === item 5: the node group =========================================================================================
@pytest.mark.parametrize("variant", ["stack", "adopt"])
def test_every_node_group_uses_a_launch_template_with_imdsv2_and_an_encrypted_root_volume(stack, variant):
    run = platform(stack, variant)
    templates = {res.name + "-id": res.inputs for res in run.of_type(LAUNCH_TEMPLATE)}
    groups = run.of_type(NODE_GROUP)
    if cfg(run, "clusterMode") != "create":
        assert not groups and not templates  # nodes of an adopted or self-managed cluster are not this stack's
        return
    assert groups
    for template in templates.values():
        assert template["metadataOptions"]["httpTokens"] == "required"
        assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert template["metadataOptions"]["httpEndpoint"] == "enabled"
        mappings = template["blockDeviceMappings"]
        assert mappings and all(str(mapping["ebs"]["encrypted"]).lower() == "true" for mapping in mappings)
        assert "userData" not in template and "imageId" not in template  # EKS keeps its AMI and bootstrap
    for group in groups:
        assert group.inputs["launchTemplate"]["id"] in templates, "node group %s has no hardened template" % group.name
        assert "diskSize" not in group.inputs and "remoteAccess" not in group.inputs  # both bypass the template


# === item 5: control-plane logs, add-ons, access =====================================================================
@pytest.mark.parametrize("variant", ["stack", "adopt"])
def test_every_control_plane_log_type_is_on(stack, variant):
    eks = platform(stack, variant).one(EKS).inputs
    assert set(eks["enabledClusterLogTypes"]) == ALL_LOG_TYPES


def test_control_plane_logs_go_to_a_precreated_log_group_with_retention(stack):
    run = platform(stack)
    name = cfg(run, "clusterName")
    (group,) = [res.inputs for res in run.of_type(LOG_GROUP) if res.inputs["name"] == "/aws/eks/%s/cluster" % name]
    assert group["retentionInDays"] >= 90


def test_log_group_key_admits_only_cloudwatch_logs_for_that_log_group():
    run = components()
    (group,) = [res.inputs for res in run.of_type(LOG_GROUP)]
    assert group["name"] == "/aws/eks/hx/cluster" and group["retentionInDays"] == 90
    keys = {"arn:aws:kms:ap-northeast-1:%s:key/%s" % (ACCOUNT, res.name): json.loads(res.inputs["policy"])
            for res in run.of_type(KEY)}
    policy = keys[group["kmsKeyId"]]
    service = [s for s in policy["Statement"] if "Service" in s["Principal"]]
    assert len(service) == 1
    (statement,) = service
    assert statement["Principal"] == {"Service": "logs.%s.amazonaws.com" % REGION}
    group_arn = "arn:aws:logs:%s:%s:log-group:%s" % (REGION, ACCOUNT, group["name"])
    assert statement["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}
    assert not [action for action in statement["Action"] if "*" in action]
    assert "kms:CreateGrant" not in statement["Action"]
    # no other key lets a service principal in
    for arn, other in keys.items():
        if arn != group["kmsKeyId"]:
            assert not [s for s in other["Statement"] if "Service" in s["Principal"]], arn


@pytest.mark.parametrize("variant", ["stack", "adopt"])
def test_cluster_access_goes_through_access_entries(stack, variant):
    eks = platform(stack, variant).one(EKS).inputs
    assert eks["accessConfig"]["authenticationMode"] in ("API", "API_AND_CONFIG_MAP")


def _access(run):
    entries = {res.inputs["principalArn"]: res.inputs for res in run.of_type(ACCESS_ENTRY)}
    policies_of = {}
    for res in run.of_type(ACCESS_POLICY):
        assert res.inputs["principalArn"] in entries, "an access policy for a principal without an access entry"
        policies_of.setdefault(res.inputs["principalArn"], []).append(res.inputs)
    return entries, policies_of


def _check_access(run, deployer, operators):
    eks = run.one(EKS).inputs
    entries, policies_of = _access(run)
    bootstrap = eks["accessConfig"].get("bootstrapClusterCreatorAdminPermissions", False)
    # the deployer is cluster admin exactly one way: EKS's bootstrap entry, or an explicit entry (not both: EKS refuses)
    assert bootstrap is (deployer not in entries)
    if not bootstrap:
        assert [p["policyArn"] for p in policies_of[deployer]] == [EKS_POLICY + "AmazonEKSClusterAdminPolicy"]
    for operator in operators:
        if operator == deployer:
            continue
        assert [p["policyArn"] for p in policies_of[operator]] == [EKS_POLICY + "AmazonEKSAdminViewPolicy"]
        assert entries[operator]["type"] == "STANDARD"
    for principal, associated in policies_of.items():
        for association in associated:
            assert association["accessScope"] == {"type": "cluster"}
            if association["policyArn"].endswith("/AmazonEKSClusterAdminPolicy"):
                assert principal == deployer, "only the deployer is cluster admin, not %s" % principal
    assert set(entries) <= {deployer} | set(operators)


def test_access_entries_of_the_stack(stack):
    run = platform(stack)
    expect_wired(run.of_type(ACCESS_ENTRY), "ClusterArgs.operator_role_arns (operatorRoleArns)")
    _check_access(run, cfg(run, "deployerRoleArn"), cfg(run, "operatorRoleArns"))


def test_access_entries_of_the_component():
    run = components()
    _check_access(run, DEPLOYER, OPERATORS)
    assert {tuple(e["kubernetesGroups"]) for p, e in _access(run)[0].items() if p != DEPLOYER} == {
        ("heracles:operators",)}


@pytest.mark.parametrize("variant", ["stack"])
def test_managed_addons_resolve_conflicts_to_the_declared_state(stack, variant):
    run = platform(stack, variant)
    addons = {res.inputs["addonName"]: res.inputs for res in run.of_type(ADDON)}
    assert set(addons) >= REQUIRED_ADDONS
    for name, addon in addons.items():
        assert addon["resolveConflictsOnCreate"] == "OVERWRITE", name
        assert addon["resolveConflictsOnUpdate"] in ("OVERWRITE", "PRESERVE"), name
    assert addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"].endswith(":role/%s-ebs-csi" % cfg(run, "clusterName"))


# === item 5: key policies that cannot lock the account out ===========================================================
def _check_root_statements(policies_by_key, account):
    for name, policy in policies_by_key.items():
        roots = root_statements(policy)
        assert len(roots) == 1, "%s: %d account-root statements" % (name, len(roots))
        (root,) = roots
        assert root["Effect"] == "Allow" and root["Principal"] == {"AWS": "arn:aws:iam::%s:root" % account}, name
        # the narrow statement: control of the key policy, no use of the key, nothing delegated by wildcard
        assert sorted(root["Action"]) == sorted(policies.ACCOUNT_ROOT_ACTIONS), name
        assert "kms:PutKeyPolicy" in root["Action"] and not set(root["Action"]) & policies.KMS_USE_ACTIONS, name
        assert not [action for action in root["Action"] if "*" in action] and "Condition" not in root, name
        assert root["Sid"] == policies.ACCOUNT_ROOT_SID


@pytest.mark.parametrize("variant", ["stack", "self-managed"])
def test_every_key_policy_has_exactly_one_narrow_account_root_statement(stack, variant):
    run = platform(stack, variant)
    found = key_policies(run)
    expect_wired(any(root_statements(policy) for policy in found.values()),
                 "kms_account_root_arn for every component's keys (and InitStoreArgs)")
    _check_root_statements(found, cfg(run, "awsAccountId"))


def test_every_component_key_has_exactly_one_narrow_account_root_statement():
    found = key_policies(components())
    assert len(found) == 5  # secrets, logs, unseal, backup, replica
    _check_root_statements(found, ACCOUNT)


# === item 5: chart values =========================================================================================
def _pod_specs(run):
    """(what, pod spec) of every workload the program registers directly (not through a chart)."""
    for owner in POD_OWNERS:
        for res in run.of_type(owner):
            spec = unwrap(res.inputs)["spec"]
            template = spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
            yield "%s %s" % (owner.rsplit(":", 1)[1], res.name), template["spec"]


@pytest.mark.parametrize("variant", ["stack", "openbao"])
def test_every_container_has_requests_and_limits(stack, variant):
    run = platform(stack, variant)
    server = vault_release(run)["values"]["server"]
    assert_bounded(server["resources"], "the Vault server")
    for container in server.get("extraContainers") or []:
        assert_bounded(container["resources"], "server.extraContainers %s" % container["name"])
    eso = release(run, "external-secrets")["values"]
    for part, what in ((eso, "the ESO controller"), (eso["webhook"], "the ESO webhook"),
                       (eso["certController"], "the ESO cert controller")):
        assert_bounded(part["resources"], what)
    pods = list(_pod_specs(run))
    assert pods  # the backup CronJob at least
    for what, pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert_bounded(container.get("resources"), "%s container %s" % (what, container["name"]))


@pytest.mark.parametrize("variant", ["stack", "openbao"])
def test_platform_pods_run_in_the_registered_priority_class(stack, variant):
    run = platform(stack, variant)
    (priority,) = [unwrap(res.inputs) for res in run.of_type(PRIORITY_CLASS)]
    assert priority["globalDefault"] is False and 0 < priority["value"] <= MAX_USER_PRIORITY
    name = priority["metadata"]["name"]
    assert vault_release(run)["values"]["server"]["priorityClassName"] == name
    eso = release(run, "external-secrets")["values"]
    assert [eso["priorityClassName"], eso["webhook"]["priorityClassName"],
            eso["certController"]["priorityClassName"]] == [name] * 3


def test_every_eso_component_spreads_its_own_pods_across_zones(stack):
    inputs = release(platform(stack), "external-secrets")
    values = inputs["values"]
    base = values.get("nameOverride") or inputs["chart"]  # the chart's selectorLabels: <name>, <name>-webhook, ...
    for part, pod_name in ((values, base), (values["webhook"], base + "-webhook"),
                           (values["certController"], base + "-cert-controller")):
        spread = part["topologySpreadConstraints"]
        zones = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zones and all(c["maxSkew"] == 1 for c in zones), pod_name
        assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == pod_name for c in zones), pod_name
        assert part["replicaCount"] >= 2


# === item 4: TLS that renews ========================================================================================
@pytest.mark.parametrize("variant", ["stack", "openbao"])
def test_tls_reload_sidecar_watches_the_listener_certificate_and_can_signal_the_server(stack, variant):
    run = platform(stack, variant)
    inputs = vault_release(run)
    server = inputs["values"]["server"]
    hcl = server["ha"]["raft"]["config"]
    cert_file = re.search(r'tls_cert_file\s*=\s*"([^"]+)"', hcl).group(1)
    tls_dir = os.path.dirname(cert_file)
    secret = [volume["name"] for volume in server["extraVolumes"] if volume["type"] == "secret"
              and tls_dir.endswith("/userconfig/%s" % volume["name"])]
    assert len(secret) == 1, "the listener certificate is not one of the chart's extraVolumes"
    assert server["shareProcessNamespace"] is True
    (sidecar,) = [c for c in server["extraContainers"] if "kill -HUP" in c["command"][-1]]
    # the same volume the chart mounts for the server (userconfig-<name>), read-only, at the path the HCL reads
    assert sidecar["volumeMounts"] == [{"name": "userconfig-%s" % secret[0], "mountPath": tls_dir, "readOnly": True}]
    # the script is heracles_pulumi.tls_reload's, the one tests/integration/test_tls_reload.py runs against bao
    # the charts start `<cli> server` (templates/_helpers.tpl, vault.args / openbao.args)
    cli = "bao" if inputs["chart"] == "openbao" else "vault"
    script = sidecar["command"][-1]
    interval = int(re.search(r"^interval=(\d+)$", script, re.M).group(1))
    assert script == reload_script(cli, tls_dir, interval) and 0 < interval <= 60
    assert sidecar["command"][:-1] == ["/bin/sh", "-c"]
    # same image as the server (no extra image to trust), same UID (signals need it), nothing more
    image = server["image"]
    assert sidecar["image"] == "%s/%s:%s" % (image.get("registry", "docker.io"), image["repository"], image["tag"])
    pod = server["statefulSet"]["securityContext"]["pod"]
    context = sidecar["securityContext"]
    assert context["runAsUser"] == pod["runAsUser"] and context["runAsGroup"] == pod["runAsGroup"]
    assert context["runAsNonRoot"] is True and pod["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]} and "privileged" not in context
    assert_bounded(sidecar["resources"], "the tls-reload sidecar")
    # cert-manager renews well before expiry, and the reload interval is negligible against that window
    (certificate,) = [spec for spec in (unwrap(res.inputs)["spec"] for res in run.of_type(
        "kubernetes:cert-manager.io/v1:Certificate")) if spec["secretName"] == secret[0]]
    assert quantity(certificate["renewBefore"].rstrip("h")) * 3600 > 100 * interval


# === item 5: the backup bucket ======================================================================================
def _bucket_settings(run, token, bucket_name):
    return [res.inputs for res in run.of_type(token) if res.inputs.get("bucket") == bucket_name + "-id"
            or res.inputs.get("bucket") == bucket_name]


def _bucket_resource(run, bucket):
    (res,) = [res for res in run.of_type(BUCKET) if res.inputs["bucket"] == bucket]
    return res


def _check_object_lock(run, bucket, days):
    res = _bucket_resource(run, bucket)
    (lock,) = _bucket_settings(run, OBJECT_LOCK, res.name)
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": days}
    (versioning,) = _bucket_settings(run, "aws:s3/bucketVersioning:BucketVersioning", res.name)
    assert versioning["versioningConfiguration"]["status"] == "Enabled"


def _check_replication(run, source, replica_region, prefix, object_lock):
    source_res = _bucket_resource(run, source)
    (config,) = _bucket_settings(run, REPLICATION, source_res.name)
    (rule,) = config["rules"]
    replicas = [res for res in run.of_type(BUCKET) if "arn:aws:s3:::%s" % res.inputs["bucket"]
                == rule["destination"]["bucket"]]
    assert len(replicas) == 1, "the replication destination is not a bucket of this stack"
    replica = replicas[0]
    assert replica.inputs["region"] == replica_region
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": prefix}
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    # versioning on both; the replica is SSE-KMS under a key in its own region, with the key replication uses
    for res in (source_res, replica):
        (versioning,) = _bucket_settings(run, "aws:s3/bucketVersioning:BucketVersioning", res.name)
        assert versioning["versioningConfiguration"]["status"] == "Enabled"
    (encryption,) = _bucket_settings(run, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                          "BucketServerSideEncryptionConfiguration", replica.name)
    replica_key = encryption["rules"][0]["applyServerSideEncryptionByDefault"]
    assert replica_key["sseAlgorithm"] == "aws:kms"
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"] == replica_key["kmsMasterKeyId"]
    keys = {"arn:aws:kms:ap-northeast-1:%s:key/%s" % (cfg_account(run), res.name): res.inputs
            for res in run.of_type(KEY)}
    assert keys[replica_key["kmsMasterKeyId"]]["region"] == replica_region
    block = _bucket_settings(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", replica.name)
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert block and all(block[0][flag] is True for flag in flags)
    # the replication role: assumable by S3 only, named actions on the two buckets and keys, KMS only through S3
    role_name = config["role"].rsplit("/", 1)[1]
    (role,) = [res for res in run.of_type(ROLE) if res.inputs["name"] == role_name]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "s3.amazonaws.com"}]
    (policy,) = [json.loads(res.inputs["policy"]) for res in run.of_type(ROLE_POLICY)
                 if res.inputs["role"] == role_name]
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not [a for a in _as_list(statement["Action"]) if "*" in a]
        assert all(r != "*" and ("arn:aws:s3:::%s" % source in r or "arn:aws:s3:::%s" % replica.inputs["bucket"] in r
                                 or r.startswith("arn:aws:kms:")) for r in _as_list(statement["Resource"]))
        if any(a.startswith("kms:") for a in _as_list(statement["Action"])):
            assert statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.")
        actions |= set(_as_list(statement["Action"]))
    expected = {"s3:GetReplicationConfiguration", "s3:ListBucket", "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl", "s3:ReplicateObject", "kms:Decrypt", "kms:Encrypt"}
    if object_lock:
        expected |= {"s3:GetObjectRetention", "s3:GetObjectLegalHold"}
    assert actions == expected
    return replica


def cfg_account(run):
    return cfg(run, "awsAccountId") if run.config else ACCOUNT


def test_backup_bucket_lock_and_replica_follow_the_deployment_facts(stack):
    run = platform(stack)
    facts = vault_data.load_deployment(DATA_DIR, stack)["backup"]
    locks = run.of_type(OBJECT_LOCK)
    replications = run.of_type(REPLICATION)
    if not facts["object_lock_days"] and not facts["replica_region"]:
        assert not locks and not replications  # off means off
        return
    expect_wired(locks or not facts["object_lock_days"], "BackupArgs.object_lock_days (deployment backup)")
    expect_wired(replications or not facts["replica_region"], "BackupArgs.replica_region (deployment backup)")
    if facts["object_lock_days"]:
        _check_object_lock(run, facts["bucket"], facts["object_lock_days"])
    if facts["replica_region"]:
        replica = _check_replication(run, facts["bucket"], facts["replica_region"], facts["prefix"],
                                     bool(facts["object_lock_days"]))
        if facts["object_lock_days"]:
            _check_object_lock(run, replica.inputs["bucket"], facts["object_lock_days"])


def test_backup_component_registers_object_lock_and_cross_region_replication():
    run = components()
    _check_object_lock(run, BUCKET_NAME, LOCK_DAYS)
    replica = _check_replication(run, BUCKET_NAME, REPLICA_REGION, "raft/", object_lock=True)
    _check_object_lock(run, replica.inputs["bucket"], LOCK_DAYS)
    # object lock is switched on by its own resource: the bucket's create-only flag stays untouched (no replacement)
    assert all("objectLockEnabled" not in res.inputs for res in run.of_type(BUCKET))
    # the backup key lets the replication role decrypt through S3 for the source bucket only
    source_key = [json.loads(res.inputs["policy"]) for res in run.of_type(KEY) if res.name == "hx-backup-kms-key"][0]
    (grant,) = [s for s in source_key["Statement"] if s["Sid"] == "ReplicationDecryptsThroughS3"]
    assert grant["Action"] == ["kms:Decrypt"] and grant["Principal"] == {
        "AWS": "arn:aws:iam::%s:role/hx-backup-replication" % ACCOUNT}
    assert grant["Condition"] == {"StringEquals": {"kms:ViaService": "s3.%s.amazonaws.com" % REGION,
                                                   "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::%s" % BUCKET_NAME}}


def test_backup_component_without_lock_or_replica_registers_neither():
    run = run_components(lambda: VaultBackup("hx-backup", backup_args(object_lock_days=0, replica_region=""),
                                             provider=k8s.Provider("hx-k8s-test", kubeconfig="{}")))
    assert not run.of_type(OBJECT_LOCK) and not run.of_type(REPLICATION) and len(run.of_type(BUCKET)) == 1


@pytest.mark.parametrize("change,message", [
    (dict(object_lock_days=31), "between 0 and retention_days"),
    (dict(object_lock_days=-1), "between 0 and retention_days"),
    (dict(replica_region=REGION), "must differ"),
])
def test_backup_component_refuses_a_lock_outliving_expiry_or_a_replica_in_the_same_region(change, message):
    with pytest.raises(ValueError, match=message):
        run_components(lambda: VaultBackup("hx-backup", backup_args(**change),
                                           provider=k8s.Provider("hx-k8s-test", kubeconfig="{}")))
