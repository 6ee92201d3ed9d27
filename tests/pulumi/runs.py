"""Pulumi program runs under mocks, cached per (project, stack, variant) for the whole session."""

import json

import harness

STACKS = harness.STACKS
# Stand-ins for `pulumi config set --secret ...`: every one must reach its resource as a Pulumi secret.
# No platform config is secret: self-managed clusters use the ambient kubeconfig ($KUBECONFIG), EKS a generated one.
PLATFORM_SECRETS = {}
# What an operator exports for pulumi/vault (never config), and the root token kept in the init store.
VAULT_TOKEN = "hvs.mock-operator-token-8c2e41"
INIT_ROOT_TOKEN = "hvs.mock-root-token-from-init-store-51d0"
ORGANIZATION = harness.ORGANIZATION


def _account(stack):
    config = harness.stack_config("platform", stack)[1]
    return config["heracles-platform:awsAccountId"]


def variant_overrides(stack, variant):
    """Config overrides of a variant: the same stack in another cluster mode, flavour or join mode."""
    account = _account(stack)
    issuer = "oidc.eks.ap-northeast-1.amazonaws.com/id/%s" % stack.upper()
    variants = {
        "stack": {},
        "self-managed": {
            "clusterMode": "self-managed",
            "oidcProviderArn": "arn:aws:iam::%s:oidc-provider/%s" % (account, issuer),
            "oidcIssuer": "https://" + issuer,
            "kmsPluginRoleArns": ["arn:aws:iam::%s:role/heracles-%s-kms-plugin" % (account, stack)],
        },
        "adopt": {
            "clusterMode": "adopt",
            "clusterRoleArn": "arn:aws:iam::%s:role/existing-eks-cluster" % account,
            "oidcProviderArn": "arn:aws:iam::%s:oidc-provider/%s" % (account, issuer),
            "oidcIssuer": "https://" + issuer,
        },
        "openbao": OPENBAO,
        "k8s-join": {"vaultRaftJoin": "k8s"},
    }
    return variants[variant]


OPENBAO = {"vaultFlavour": "openbao", "vaultChartVersion": "0.29.2", "vaultImageTag": "2.6.2"}

_CACHE = {}


def platform(stack, variant="stack"):
    """The platform program's run for ``stack`` (``variant``: stack as committed, or a documented override)."""
    overrides = variant_overrides(stack, variant)
    secrets = PLATFORM_SECRETS if variant == "self-managed" else {}
    key = ("platform", stack, variant)
    if key not in _CACHE:
        _CACHE[key] = harness.run_program("platform", stack, overrides=overrides, secrets=secrets)
    return _CACHE[key]


DATABASE_ADMIN_PASSWORD = "mock-database-admin-password-7c1e"


def init_store_answer(args):
    """aws:secretsmanager/getSecretVersion for the init store: the JSON vault_init writes (root token inside); for a
    database connection's admin secret (``.../database/...``), the JSON with its initial password."""
    if "/database/" in args["secretId"]:
        return {"arn": "arn:aws:secretsmanager:ap-northeast-1:1:secret:%s" % args["secretId"], "id": args["secretId"],
                "secretId": args["secretId"], "versionId": "v1", "versionStage": "AWSCURRENT", "versionStages": [],
                "secretBinary": "", "createdDate": "", "secretString": json.dumps({"password": DATABASE_ADMIN_PASSWORD})}
    return {"arn": "arn:aws:secretsmanager:ap-northeast-1:1:secret:%s" % args["secretId"], "id": args["secretId"],
            "secretId": args["secretId"], "versionId": "v1", "versionStage": "AWSCURRENT", "versionStages": [],
            "secretBinary": "", "createdDate": "", "arn_": "",
            "secretString": json.dumps({"root_token": INIT_ROOT_TOKEN, "unseal_keys_b64": []})}


def vault_project(stack, variant="stack"):
    """pulumi/vault for ``stack``, reading the platform run's outputs through its StackReference."""
    overrides = {"stack": {}, "openbao": {"vaultFlavour": "openbao"},
                 "init-store": {"vaultTokenFrom": "init-store"}}[variant]
    key = ("vault", stack, variant)
    if key not in _CACHE:
        platform_name = "%s/heracles-platform/%s" % (ORGANIZATION, stack)
        environ = {} if variant == "init-store" else {"VAULT_TOKEN": VAULT_TOKEN}
        _CACHE[key] = harness.run_program(
            "vault", stack, overrides=overrides, stack_outputs={platform_name: platform(stack).outputs},
            calls={"aws:secretsmanager/getSecretVersion:getSecretVersion": init_store_answer}, environ=environ)
    return _CACHE[key]
