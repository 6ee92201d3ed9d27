"""Pulumi program runs under mocks, cached per (project, stack, variant) for the whole session."""

import json

import harness

STACKS = harness.STACKS
# Stand-ins for `pulumi config set --secret ...`: every one must reach its resource as a Pulumi secret.
PLATFORM_SECRETS = {"kubeconfig": json.dumps({"apiVersion": "v1", "kind": "Config", "users": [
    {"name": "ops", "user": {"token": "mock-kubeconfig-token-5f0c1d"}}]})}
VAULT_SECRETS = {"vaultToken": "hvs.mock-vault-token-8c2e41", "tokenReviewerJwt": "eyJmock.reviewer-jwt.7a9b3c"}


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


def vault_project(stack, variant="stack"):
    overrides = {"stack": {}, "openbao": {"vaultFlavour": "openbao", "auditFilePath": ""}}[variant]
    key = ("vault", stack, variant)
    if key not in _CACHE:
        _CACHE[key] = harness.run_program("vault", stack, overrides=overrides, secrets=VAULT_SECRETS)
    return _CACHE[key]
