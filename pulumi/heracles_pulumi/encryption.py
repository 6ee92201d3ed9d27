"""Kubernetes Secrets envelope encryption: EKS ``encryption_config`` or a kube-apiserver EncryptionConfiguration."""

import yaml

KMS_PLUGIN_SOCKET = "unix:///var/run/kmsplugin/socket.sock"
ENCRYPTED_RESOURCES = ("secrets",)


def eks_encryption_config(key_arn):
    """The EKS cluster's ``encryption_config``: the key, and the resources it encrypts (Secrets)."""
    return {"provider": {"key_arn": key_arn}, "resources": list(ENCRYPTED_RESOURCES)}


def render_encryption_configuration(plugin_name, endpoint=KMS_PLUGIN_SOCKET, timeout="3s"):
    """A kube-apiserver EncryptionConfiguration (KMS v2) for self-managed clusters.

    The KMS plugin (for example aws-encryption-provider) listens on ``endpoint`` and holds the key ARN;
    ``identity`` comes last so Secrets written before encryption was enabled stay readable until they
    are rewritten (``kubectl get secrets -A -o json | kubectl replace -f -``).
    """
    document = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": list(ENCRYPTED_RESOURCES),
            "providers": [
                {"kms": {"apiVersion": "v2", "name": plugin_name, "endpoint": endpoint, "timeout": timeout}},
                {"identity": {}},
            ],
        }],
    }
    return yaml.safe_dump(document, sort_keys=False)
