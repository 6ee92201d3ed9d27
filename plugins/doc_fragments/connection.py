# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Matches CONNECTION_SPEC in plugins/module_utils/client.py; sanity checks keep them equal.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - API address of a Vault/OpenBao node, for example C(https://vault.example.com:8200).
      - Falls back to E(BAO_ADDR), then E(VAULT_ADDR), then C(https://127.0.0.1:8200).
      - With O(follow_leader=true) requests go to the active node found through C(sys/leader).
    type: str
    aliases: [addr]
  nodes:
    description:
      - API addresses of the other nodes of the cluster, used to find the active node when O(url) is down.
    type: list
    elements: str
    default: []
  ca_cert:
    description:
      - CA bundle that signed the servers' certificates. Falls back to E(BAO_CACERT), then E(VAULT_CACERT).
    type: path
    aliases: [cacert]
  validate_certs:
    description:
      - Verify TLS certificates. Setting this to V(false) is an explicit opt-out and always prints a warning.
    type: bool
    default: true
  client_cert:
    description: Client certificate (PEM) for listeners that require mutual TLS.
    type: path
  client_key:
    description: Private key of O(client_cert).
    type: path
  timeout:
    description: Seconds to wait for one HTTP request.
    type: int
    default: 10
  namespace:
    description: Vault Enterprise / OpenBao namespace. Falls back to E(BAO_NAMESPACE), then E(VAULT_NAMESPACE).
    type: str
  retries:
    description:
      - How many times a request is retried on connection errors, 5xx, sealed or standby answers and leader changes.
      - The waits grow exponentially from O(retry_delay) (1 s, 2 s, 4 s by default).
    type: int
    default: 3
  retry_delay:
    description: First wait between retries, in seconds; each next wait doubles.
    type: float
    default: 1.0
  follow_leader:
    description:
      - Send requests to the active node (found with C(GET /v1/sys/leader)) and move to the new one when the leader changes.
      - If the advertised leader address is not reachable from here, requests stay on O(url) (standbys forward them).
    type: bool
    default: true
  auth_method:
    description:
      - How to log in. V(init_file) uses the root token from the encrypted init material (bootstrap only).
    type: str
    default: token
    choices: [token, kubernetes, approle, init_file, none]
  token:
    description: Vault token. Falls back to E(BAO_TOKEN), then E(VAULT_TOKEN), then O(token_path), then C(~/.vault-token).
    type: str
  token_path:
    description: File that holds a token.
    type: path
  auth_mount_point:
    description: Mount point of the auth method (default C(kubernetes) or C(approle)).
    type: str
  role:
    description: Kubernetes auth role, or the AppRole role_id.
    type: str
    aliases: [role_id]
  jwt:
    description: Service-account JWT for Kubernetes auth.
    type: str
  jwt_path:
    description: File with the service-account JWT (default C(/var/run/secrets/kubernetes.io/serviceaccount/token)).
    type: path
  secret_id:
    description: AppRole secret_id.
    type: str
"""

    KEYSTORE = r"""
options:
  init_store:
    description:
      - Where the encrypted init material (unseal or recovery keys and root token) lives.
      - V(file) is an ansible-vault (AES256) file, mode 0600; V(aws_secretsmanager) is a Secrets Manager secret under a KMS key.
    type: str
    default: file
    choices: [file, aws_secretsmanager]
  init_file:
    description: Path of the ansible-vault encrypted init file (O(init_store=file)).
    type: path
  init_file_password:
    description: The ansible-vault password of O(init_file). Prefer O(init_file_password_file).
    type: str
  init_file_password_file:
    description:
      - File holding the ansible-vault password of O(init_file). Falls back to E(HERACLES_INIT_FILE_PASSWORD_FILE).
    type: path
  aws_secret_name:
    description: Secrets Manager secret name (O(init_store=aws_secretsmanager)).
    type: str
  aws_kms_key_id:
    description: KMS key (id, ARN or alias) that encrypts the secret when it is created.
    type: str
  aws_region:
    description: AWS region; the boto3 default chain applies when unset.
    type: str
  aws_endpoint_url:
    description: Alternative Secrets Manager endpoint (VPC endpoint, or a test server).
    type: str
"""
