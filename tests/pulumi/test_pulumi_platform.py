"""Security invariants of pulumi/platform, asserted on what the program registers, once per stack.

Each test reads the stack's own config (Pulumi.<stack>.yaml + Pulumi.yaml defaults) and checks the program
built exactly that: replicas, TLS, key rotation, exact IAM actions and resources, IRSA trust on ``sub`` and
``aud``, PDBs, the ESO API version, no plaintext secret in any resource input.
"""

import fnmatch
import json
import os
import re

import pytest
import yaml

import harness
from ansible_collections.heracles.secrets.plugins.module_utils import vault_data
from harness import inventory, plaintext_strings, unwrap
from heracles_pulumi import policies
from heracles_pulumi.vault_objects import duration_seconds
from heracles_pulumi.server_config import ServerSpec, render_server_hcl
from runs import PLATFORM_SECRETS, platform

P = "heracles-platform:"
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
CRONJOB = "kubernetes:batch/v1:CronJob"
DATA_DIR = os.path.join(harness.REPO_ROOT, "vault")
LOGIN = re.compile(r"write -field=token auth/(?P<mount>\S+)/login role=(?P<role>\S+) jwt=@")
POLICY_PATH = re.compile(r'path "(?P<path>[^"]+)" \{\s*capabilities = \[(?P<caps>[^\]]*)\]\s*\}')


def cfg(run, key):
    value = run.config[P + key] if ":" not in key else run.config[key]
    try:
        return json.loads(value)
    except ValueError:
        return value


def facts(run):
    """The stack's deployment facts (vault/environments/<env>.yml deployment): bucket, keys, schedules."""
    return vault_data.load_deployment(DATA_DIR, cfg(run, "environment"))


def cluster(run):
    return cfg(run, "clusterName")


def role_arn(run, suffix):
    return "arn:aws:iam::%s:role/%s-%s" % (cfg(run, "awsAccountId"), cluster(run), suffix)


def release(run, chart):
    found = [res for res in run.of_type(RELEASE) if res.inputs["chart"] == chart]
    assert len(found) == 1, [res.inputs["chart"] for res in run.of_type(RELEASE)]
    return unwrap(found[0].inputs)


def vault_values(run):
    return release(run, cfg(run, "vaultFlavour"))["values"]


def keys(run):
    """{resource name: (inputs, parsed policy)} for every KMS key."""
    return {res.name: (res.inputs, json.loads(res.inputs["policy"])) for res in run.of_type(KEY)}


def key_arn(run, name):
    return "arn:aws:kms:ap-northeast-1:%s:key/%s" % (cfg(run, "awsAccountId"), name)


def inline_policy(run, name):
    res = run.one(ROLE_POLICY, name)
    return json.loads(res.inputs["policy"]), res.inputs["role"]


def statements(document):
    return document["Statement"]


# --- Vault HA ------------------------------------------------------------------------------------
def test_vault_runs_three_raft_voters_with_pdb_anti_affinity_and_zone_spread(stack):
    run = platform(stack)
    server = vault_values(run)["server"]
    assert server["ha"]["enabled"] is True
    assert server["ha"]["replicas"] == 3
    assert server["ha"]["raft"]["enabled"] is True and server["ha"]["raft"]["setNodeId"] is True
    assert server["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    anti = server["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [term["topologyKey"] for term in anti] == ["kubernetes.io/hostname"]
    spread = server["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["maxSkew"]) for c in spread] == [
        ("topology.kubernetes.io/zone", "DoNotSchedule", 1)]
    assert anti[0]["labelSelector"]["matchLabels"] == spread[0]["labelSelector"]["matchLabels"]
    assert server["auditStorage"]["enabled"] is True
    assert server["auditStorage"]["size"] == cfg(run, "vaultAuditStorageSize")
    assert server["authDelegator"] == {"enabled": True}
    assert server["standalone"] == {"enabled": False} and server["dev"] == {"enabled": False}


def test_vault_tls_is_on_everywhere(stack):
    run = platform(stack)
    values = vault_values(run)
    assert values["global"]["tlsDisable"] is False
    hcl = values["server"]["ha"]["raft"]["config"]
    assert "tls_disable        = false" in hcl and "tls_disable = 1" not in hcl and "tls_disable = true" not in hcl
    for name in ("tls.crt", "tls.key", "ca.crt"):
        assert "/vault/userconfig/vault-tls/%s" % name in hcl
    certificate = unwrap(run.one("kubernetes:cert-manager.io/v1:Certificate", "%s-vault-tls" % cluster(run)).inputs)
    assert certificate["spec"]["secretName"] == "vault-tls"
    assert certificate["spec"]["issuerRef"]["name"] == cfg(run, "vaultTlsIssuer")
    # every name a joining node checks is on the certificate
    server_names = [line.split("=")[1].strip().strip('"') for line in hcl.splitlines() if "leader_tls_servername" in line]
    assert len(server_names) == 3
    assert set(server_names) <= set(certificate["spec"]["dnsNames"])
    assert hcl.count("leader_ca_cert_file") == 3
    stores = [unwrap(res.inputs)["spec"]["provider"]["vault"]
              for res in run.of_type("kubernetes:external-secrets.io/v1:SecretStore")]
    assert stores and all(store["server"].startswith("https://") for store in stores)
    assert all(store["caProvider"] == {"type": "ConfigMap", "name": "vault-ca", "key": "ca.crt"} for store in stores)


def test_vault_hcl_in_chart_is_the_pure_rendering_with_awskms_on_the_unseal_key(stack):
    run = platform(stack)
    hcl = vault_values(run)["server"]["ha"]["raft"]["config"]
    unseal = key_arn(run, "%s-vault-unseal-key" % cluster(run))
    assert 'seal "awskms" {\n  region     = "%s"\n  kms_key_id = "%s"\n}' % (cfg(run, "aws:region"), unseal) in hcl
    spec = ServerSpec(flavour="vault", release="vault", namespace="vault", cluster_name=cluster(run),
                      kms_region=cfg(run, "aws:region"), kms_key_id=unseal, log_level=cfg(run, "vaultLogLevel"),
                      metrics=cfg(run, "monitoring"))
    assert hcl == render_server_hcl(spec)
    assert "performance_multiplier" in hcl.split('storage "raft"')[1].split("\n}\n")[0]
    assert "disable_mlock = true" in hcl  # HashiCorp Vault flavour


def test_vault_service_account_is_annotated_with_its_irsa_role(stack):
    run = platform(stack)
    account = vault_values(run)["server"]["serviceAccount"]
    assert account["create"] is True and account["name"] == "vault"
    assert account["annotations"] == {"eks.amazonaws.com/role-arn": role_arn(run, "vault")}


def test_openbao_flavour_declares_audit_and_drops_disable_mlock(stack):
    run = platform(stack, "openbao")
    values = release(run, "openbao")
    assert values["repositoryOpts"]["repo"] == "https://openbao.github.io/openbao-helm"
    server = values["values"]["server"]
    assert server["image"] == {"registry": "quay.io", "repository": "openbao/openbao", "tag": "2.6.2"}
    hcl = server["ha"]["raft"]["config"]
    assert "disable_mlock" not in hcl
    assert 'audit "file" "file" {' in hcl and 'file_path = "/openbao/audit/audit.log"' in hcl
    assert server["auditStorage"]["mountPath"] == "/openbao/audit"


def test_kubernetes_auto_join_variant(stack):
    hcl = vault_values(platform(stack, "k8s-join"))["server"]["ha"]["raft"]["config"]
    assert hcl.count("retry_join {") == 1
    assert 'auto_join_scheme      = "https"' in hcl and "provider=k8s" in hcl
    assert 'leader_tls_servername = "vault.vault.svc"' in hcl


# --- KMS -----------------------------------------------------------------------------------------
def test_every_key_rotates_and_has_the_stack_deletion_window(stack):
    run = platform(stack)
    found = keys(run)
    replica = ("backup-replica-kms-key",) if facts(run)["backup"]["replica_region"] else ()
    logs = ("logs-key",) if cfg(run, "controlPlaneLogKms") and cfg(run, "clusterMode") == "create" else ()
    assert sorted(found) == sorted("%s-%s" % (cluster(run), name) for name in (
        "secrets-key", "vault-unseal-key", "backup-kms-key", "init-kms-key") + replica + logs)
    for name, (inputs, dummy) in found.items():
        assert inputs["enableKeyRotation"] is True, name
        assert inputs["rotationPeriodInDays"] == cfg(run, "kmsRotationPeriodDays"), name
        assert inputs["deletionWindowInDays"] == cfg(run, "kmsDeletionWindowDays"), name
        assert inputs["keyUsage"] == "ENCRYPT_DECRYPT", name


def _grants(policy):
    """{sid: (principals, actions, condition)} for the usage statements; checks the admin one on the way."""
    admin, *usage = statements(policy)
    assert admin["Sid"] == "KeyAdministration"
    assert admin["Action"] == list(policies.KEY_ADMIN_ACTIONS)
    assert not set(admin["Action"]) & policies.KMS_USE_ACTIONS
    out = {}
    for statement in usage:
        if statement["Sid"] == "AccountRootRecoversKeyPolicy" or "Service" in statement["Principal"]:
            continue  # the lock-out recovery statement and service grants: tests/pulumi/test_pulumi_hardening.py
        assert statement["Effect"] == "Allow"
        principals = statement["Principal"]["AWS"]
        principals = principals if isinstance(principals, list) else [principals]
        assert "*" not in principals and not any(p.endswith(":root") for p in principals)
        out[statement["Sid"]] = (sorted(principals), sorted(statement["Action"]), statement.get("Condition"))
    return admin, out


def test_key_policies_grant_only_the_roles_that_need_them(stack):
    run = platform(stack)
    name = cluster(run)
    region = cfg(run, "aws:region")
    operators = sorted(cfg(run, "operatorRoleArns"))
    found = keys(run)
    for dummy, policy in found.values():
        admin = _grants(policy)[0]
        admins = admin["Principal"]["AWS"]
        assert sorted(admins if isinstance(admins, list) else [admins]) == sorted(cfg(run, "kmsAdminRoleArns"))

    assert _grants(found["%s-vault-unseal-key" % name][1])[1] == {
        "VaultAutoUnseal": ([role_arn(run, "vault")], ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"], None)}
    s3 = {"StringEquals": {"kms:ViaService": "s3.%s.amazonaws.com" % region}}
    backup_grants = _grants(found["%s-backup-kms-key" % name][1])[1]
    if facts(run)["backup"]["replica_region"]:  # S3's replication role reads the snapshots it copies
        bucket_arn = "arn:aws:s3:::%s" % facts(run)["backup"]["bucket"]
        assert backup_grants.pop("ReplicationDecryptsThroughS3") == (
            [role_arn(run, "backup-replication")], ["kms:Decrypt"],
            {"StringEquals": dict(s3["StringEquals"], **{"kms:EncryptionContext:aws:s3:arn": bucket_arn})})
    assert backup_grants == {
        "BackupJobEncryptsThroughS3": ([role_arn(run, "backup")], ["kms:GenerateDataKey"], s3),
        "OperatorsRestoreThroughS3": (operators, ["kms:Decrypt", "kms:DescribeKey"], s3)}
    assert _grants(found["%s-init-kms-key" % name][1])[1] == {
        "OperatorsThroughSecretsManager": (operators, sorted(policies.INIT_MATERIAL_ACTIONS), {
            "StringEquals": {"kms:ViaService": "secretsmanager.%s.amazonaws.com" % region}})}
    assert _grants(found["%s-secrets-key" % name][1])[1] == {
        "KubernetesSecretsEnvelopeEncryption": ([role_arn(run, "cluster")], ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"],
                                                None),
        "LetEksCreateItsGrant": ([cfg(run, "deployerRoleArn")], ["kms:CreateGrant", "kms:DescribeKey"],
                                 {"Bool": {"kms:GrantIsForAWSResource": "true"}})}


# --- EKS Secrets encryption ------------------------------------------------------------------------
def test_created_cluster_encrypts_secrets_with_the_secrets_key(stack):
    run = platform(stack)
    eks = run.one("aws:eks/cluster:Cluster")
    assert eks.inputs["encryptionConfig"] == {
        "provider": {"keyArn": key_arn(run, "%s-secrets-key" % cluster(run))}, "resources": ["secrets"]}
    assert eks.inputs["deletionProtection"] is cfg(run, "deletionProtection")
    assert eks.inputs["vpcConfig"]["endpointPublicAccess"] is bool(cfg(run, "publicAccessCidrs"))
    assert run.outputs["encryptionConfiguration"] is None


def test_adopted_cluster_is_imported_with_the_same_encryption_config(stack):
    run = platform(stack, "adopt")
    eks = run.one("aws:eks/cluster:Cluster")
    assert eks.import_id == cluster(run)
    assert eks.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert eks.inputs["roleArn"] == cfg(run, "clusterRoleArn")
    assert not run.of_type("aws:eks/nodeGroup:NodeGroup") and not run.of_type(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider")


def test_self_managed_cluster_gets_a_kms_v2_encryption_configuration(stack):
    run = platform(stack, "self-managed")
    assert not run.of_type("aws:eks/cluster:Cluster")
    document = yaml.safe_load(run.outputs["encryptionConfiguration"])
    assert document["kind"] == "EncryptionConfiguration"
    assert document["apiVersion"] == "apiserver.config.k8s.io/v1"
    (rule,) = document["resources"]
    assert rule["resources"] == ["secrets"]
    assert rule["providers"][0]["kms"]["apiVersion"] == "v2"
    assert rule["providers"][-1] == {"identity": {}}
    grants = _grants(keys(run)["%s-secrets-key" % cluster(run)][1])[1]
    assert grants == {"KubernetesSecretsEnvelopeEncryption": (
        cfg(run, "kmsPluginRoleArns"), ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"], None)}


# --- IAM -----------------------------------------------------------------------------------------
def test_exactly_three_inline_policies_with_exact_actions_and_resources(stack):
    run = platform(stack)
    name, account, region = cluster(run), cfg(run, "awsAccountId"), cfg(run, "aws:region")
    # (+ S3's replication role where the data asks for a replica: tests/pulumi/test_pulumi_hardening.py)
    replication = ["%s-backup-replication-policy" % name] if facts(run)["backup"]["replica_region"] else []
    assert sorted(res.name for res in run.of_type(ROLE_POLICY)) == sorted(
        ["%s-vault-irsa-unseal" % name, "%s-eso-irsa-read" % name, "%s-backup-irsa-write" % name] + replication)

    vault, role = inline_policy(run, "%s-vault-irsa-unseal" % name)
    assert role == "%s-vault" % name
    assert statements(vault) == [{"Sid": "VaultAutoUnseal", "Effect": "Allow",
                                  "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"],
                                  "Resource": key_arn(run, "%s-vault-unseal-key" % name)}]

    eso, role = inline_policy(run, "%s-eso-irsa-read" % name)
    prefix = cfg(run, "esoSecretsPrefix")
    assert role == "%s-eso" % name
    assert statements(eso) == [
        {"Sid": "ReadSecretsUnderPrefix", "Effect": "Allow", "Action": list(policies.ESO_SECRETSMANAGER_ACTIONS),
         "Resource": "arn:aws:secretsmanager:%s:%s:secret:%s/*" % (region, account, prefix)},
        {"Sid": "ReadParametersUnderPrefix", "Effect": "Allow", "Action": list(policies.ESO_SSM_ACTIONS),
         "Resource": ["arn:aws:ssm:%s:%s:parameter/%s" % (region, account, prefix),
                      "arn:aws:ssm:%s:%s:parameter/%s/*" % (region, account, prefix)]}]
    # ESO can read neither Vault's init material nor another environment's secrets
    init_secret = "arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf" % (region, account, facts(run)["init_store"]["secret_name"])
    assert not fnmatch.fnmatchcase(init_secret, statements(eso)[0]["Resource"])
    assert cfg(run, "environment") in prefix.split("/")

    backup, role = inline_policy(run, "%s-backup-irsa-write" % name)
    bucket, backup_key = facts(run)["backup"]["bucket"], key_arn(run, "%s-backup-kms-key" % name)
    assert role == "%s-backup" % name
    assert statements(backup) == [
        {"Sid": "WriteSnapshotsUnderPrefix", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": "arn:aws:s3:::%s/%s*" % (bucket, facts(run)["backup"]["prefix"]),
         "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms",
                                        "s3:x-amz-server-side-encryption-aws-kms-key-id": backup_key}}},
        {"Sid": "EncryptWithBackupKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey"], "Resource": backup_key}]


def _service_accounts(run):
    """(namespace, name) of the service account each IRSA role is meant for, read from what is deployed."""
    vault_sa = vault_values(run)["server"]["serviceAccount"]["name"]
    eso_values = release(run, "external-secrets")
    backup_sa = unwrap(run.one("kubernetes:core/v1:ServiceAccount", "%s-backup-sa" % cluster(run)).inputs)["metadata"]
    return {
        "vault": (cfg(run, "vaultNamespace"), vault_sa),
        "eso": (eso_values["namespace"], eso_values["values"]["serviceAccount"]["name"]),
        "backup": (backup_sa["namespace"], backup_sa["name"]),
        "ebs-csi": ("kube-system", "ebs-csi-controller-sa"),
    }


@pytest.mark.parametrize("variant", ["stack", "adopt", "self-managed"])
def test_irsa_trust_pins_provider_sub_and_aud(stack, variant):
    run = platform(stack, variant)
    if variant == "stack":
        issuer = "oidc.eks.example/id/%s-eks" % cluster(run)
        provider_arn = "arn:aws:mock:iam:%s-oidc" % cluster(run)
        assert run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs["clientIdLists"] == [
            "sts.amazonaws.com"]
    else:
        issuer = cfg(run, "oidcIssuer")[len("https://"):]
        provider_arn = cfg(run, "oidcProviderArn")
    accounts = _service_accounts(run)
    irsa_roles = {res.inputs["name"][len(cluster(run)) + 1:]: json.loads(res.inputs["assumeRolePolicy"])
                  for res in run.of_type(ROLE) if "Federated" in res.inputs["assumeRolePolicy"]}
    expected = {"vault", "eso", "backup"} | ({"ebs-csi"} if variant == "stack" else set())
    assert set(irsa_roles) == expected
    for suffix, trust in irsa_roles.items():
        namespace, account = accounts[suffix]
        assert trust["Statement"] == [{
            "Sid": "AssumeFromServiceAccount", "Effect": "Allow", "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "%s:sub" % issuer: "system:serviceaccount:%s:%s" % (namespace, account),
                "%s:aud" % issuer: "sts.amazonaws.com"}}}], suffix


# --- ESO -----------------------------------------------------------------------------------------
def test_eso_release_is_highly_available(stack):
    run = platform(stack)
    values = release(run, "external-secrets")["values"]
    assert values["replicaCount"] == cfg(run, "esoReplicas") >= 2
    assert values["leaderElect"] is True
    for part in (values, values["webhook"], values["certController"]):
        assert part["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    # the top-level switch renders the controller's, webhook's and cert controller's ServiceMonitors (chart >= 0.9.1)
    assert values["serviceMonitor"]["enabled"] is cfg(run, "monitoring")
    assert values["webhook"]["replicaCount"] >= 2 and values["certController"]["replicaCount"] >= 2
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": role_arn(run, "eso")}


def test_eso_objects_use_the_v1_api_and_only_aws_stores_are_cluster_wide_and_conditioned(stack):
    run = platform(stack)
    crs = [res for res in run.resources if res.type.startswith("kubernetes:external-secrets.io/")]
    assert crs and {res.inputs["apiVersion"] for res in crs} == {"external-secrets.io/v1"}
    stores = {res.inputs["metadata"]["name"]: unwrap(res.inputs)["spec"]
              for res in run.of_type("kubernetes:external-secrets.io/v1:ClusterSecretStore")}
    # no cluster-wide Vault store: a namespace that may create ExternalSecrets must not read every app through it
    assert sorted(stores) == ["aws-parameterstore", "aws-secretsmanager"]
    for name, service in (("aws-secretsmanager", "SecretsManager"), ("aws-parameterstore", "ParameterStore")):
        assert stores[name]["provider"]["aws"] == {"service": service, "region": cfg(run, "aws:region"), "auth": {
            "jwt": {"serviceAccountRef": {"name": "external-secrets", "namespace": "external-secrets"}}}}
        assert stores[name]["conditions"] == [
            {"namespaceSelector": {"matchLabels": {"heracles.secrets/aws-secrets": "true"}}}]


# --- backups -------------------------------------------------------------------------------------
def test_backup_bucket_is_versioned_encrypted_private_and_expires(stack):
    run = platform(stack)
    backup_key = key_arn(run, "%s-backup-kms-key" % cluster(run))
    name = cluster(run)  # the snapshot bucket (a replica bucket, where the data asks for one, has its own test)
    assert run.one("aws:s3/bucketVersioning:BucketVersioning", "%s-backup-versioning" % name).inputs[
        "versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                      "%s-backup-encryption" % name).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": backup_key}
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "%s-backup-public-access" % name).inputs
    assert all(block[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                "restrictPublicBuckets"))
    (life,) = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                      "%s-backup-lifecycle" % name).inputs["rules"]
    assert life["status"] == "Enabled" and life["filter"] == {"prefix": facts(run)["backup"]["prefix"]}
    assert life["expiration"] == {"days": facts(run)["backup"]["retention_days"]}
    assert life["noncurrentVersionExpiration"] == {"noncurrentDays": facts(run)["backup"]["noncurrent_retention_days"]}
    bucket = run.one("aws:s3/bucket:Bucket", "%s-backup-bucket" % name).inputs
    assert bucket["forceDestroy"] is (not cfg(run, "deletionProtection"))
    denies = statements(json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy", "%s-backup-bucket-policy" % name).inputs[
        "policy"]))
    assert [d["Sid"] for d in denies] == ["DenyInsecureTransport", "DenyOtherEncryptionKeys"]


def test_backup_cronjob_snapshots_and_ships_with_the_backup_key(stack):
    run = platform(stack)
    cron = unwrap(run.one("kubernetes:batch/v1:CronJob", "%s-backup-cronjob" % cluster(run)).inputs)["spec"]
    assert cron["schedule"] == facts(run)["backup"]["schedule"] and cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vault-backup"
    (snapshot,) = pod["initContainers"]
    assert "operator raft snapshot save" in snapshot["command"][-1]
    assert "auth/kubernetes-%s/login" % cfg(run, "environment") in snapshot["command"][-1]
    (ship,) = pod["containers"]
    env = {item["name"]: item["value"] for item in ship["env"]}
    assert env["BACKUP_KMS_KEY_ARN"] == key_arn(run, "%s-backup-kms-key" % cluster(run))
    assert env["BACKUP_BUCKET"] == facts(run)["backup"]["bucket"] and env["BACKUP_PREFIX"] == facts(run)["backup"]["prefix"]
    assert '--sse aws:kms --sse-kms-key-id "${BACKUP_KMS_KEY_ARN}"' in ship["command"][-1]
    token = [v for v in pod["volumes"] if v["name"] == "vault-token"][0]["projected"]["sources"][0]
    assert token["serviceAccountToken"]["audience"] == "vault"


def test_backup_cronjob_logs_in_with_a_role_vault_data_declares(stack):
    """What the job logs in with (mount, role, service account, namespace, audience) is in vault/ for this stack.

    Read back through the collection's loader, the same data roles/configure and pulumi/vault apply: a role
    bound to exactly this service account, one policy with read on sys/storage/raft/snapshot and nothing else,
    no default policy, and tokens that do not outlive the job.
    """
    run = platform(stack)
    env = cfg(run, "environment")
    desired = vault_data.load(DATA_DIR, [env])
    cron = unwrap(run.one(CRONJOB, "%s-backup-cronjob" % cluster(run)).inputs)
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (snapshot,) = pod["initContainers"]
    login = LOGIN.search(snapshot["command"][-1])
    assert login, snapshot["command"][-1]
    [auth] = [a for a in desired["auth"] if a["path"] == login.group("mount")]
    assert auth["environment"] == env and auth["path"] == "kubernetes-%s" % env
    [role] = [r for r in auth["roles"] if r["name"] == login.group("role")]
    assert role["name"] == vault_data.BACKUP_ROLE == "vault-backup"

    account = unwrap(run.one("kubernetes:core/v1:ServiceAccount", "%s-backup-sa" % cluster(run)).inputs)["metadata"]
    assert pod["serviceAccountName"] == account["name"] and cron["metadata"]["namespace"] == account["namespace"]
    assert role["bound_service_account_names"] == [account["name"]]
    assert role["bound_service_account_namespaces"] == [account["namespace"]] == [cfg(run, "vaultNamespace")]
    token = [v for v in pod["volumes"] if v["name"] == "vault-token"][0]["projected"]["sources"][0]
    assert token["serviceAccountToken"]["audience"] == role["audience"]

    assert role["policies"] == ["%s-backup" % env] and role["token_no_default_policy"] is True
    hcl = desired["policies"]["%s-backup" % env]
    assert [(m.group("path"), m.group("caps")) for m in POLICY_PATH.finditer(hcl)] == [
        ("sys/storage/raft/snapshot", '"read"')]
    assert hcl.count("path ") == 1
    assert duration_seconds(role["token_ttl"]) <= duration_seconds(role["token_max_ttl"]) <= job["activeDeadlineSeconds"]


def test_a_backup_role_bound_elsewhere_than_vaults_namespace_is_refused():
    """The job mounts Vault's CA secret, so it runs in vaultNamespace: the declared role must be bound there."""
    with pytest.raises(ValueError, match="binds the backup role to namespace"):
        harness.run_program("platform", "dev", overrides={"vaultNamespace": "openbao"})


def test_init_store_matches_the_inventory_the_bootstrap_uses(stack):
    run = platform(stack)
    connection = inventory(stack)["heracles_vault_connection"]
    secret = run.one("aws:secretsmanager/secret:Secret").inputs
    assert secret["name"] == connection["aws_secret_name"] == run.outputs["initSecretName"]
    assert "secretString" not in secret  # the value is written once by vault_init, never by Pulumi
    assert run.outputs["initKeyAlias"] == connection["aws_kms_key_id"]
    assert secret["kmsKeyId"] == key_arn(run, "%s-init-kms-key" % cluster(run))


# --- whole program -------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["stack", "self-managed"])
def test_no_plaintext_secret_in_any_resource_input(stack, variant):
    run = platform(stack, variant)
    secret_values = list(PLATFORM_SECRETS.values()) if variant == "self-managed" else []
    secret_values += ["mock-kubeconfig-token-5f0c1d"]
    for res in run.resources:
        for path, text in plaintext_strings(res.inputs):
            assert not any(value in text for value in secret_values), "%s %s.%s holds a secret in plaintext" % (
                res.type, res.name, path)
            assert "PRIVATE KEY" not in text, "%s %s.%s holds a private key" % (res.type, res.name, path)
    provider = run.one("pulumi:providers:kubernetes").inputs
    if variant == "stack" or "kubeconfig" in provider:
        assert not list(plaintext_strings(provider["kubeconfig"])), "the kubeconfig must be a Pulumi secret"


def test_kubernetes_objects_go_to_the_stack_cluster_and_names_are_prefixed(stack):
    run = platform(stack)
    k8s = [res for res in run.resources if res.custom and res.type.startswith("kubernetes:")]
    assert k8s and all(res.provider.split("::")[-1].startswith("%s-k8s" % cluster(run)) for res in k8s), [
        (res.name, res.provider) for res in k8s if "%s-k8s" % cluster(run) not in res.provider]
    names = [res.name for res in run.resources if res.type != "pulumi:pulumi:Stack"]
    assert [name for name in names if name != cluster(run) and not name.startswith(cluster(run) + "-")] == []
