"""Reload of the Vault/OpenBao listener certificate when cert-manager renews it, as pure functions.

cert-manager rewrites the TLS Secret before the certificate expires; the kubelet then swaps the files of the
mounted secret volume atomically (it writes a new ``..<timestamp>`` directory and renames the ``..data``
symlink onto it; ``tls.crt`` is a symlink through ``..data``). Vault and OpenBao read the listener certificate
at start and again on SIGHUP, and the StatefulSet updates with OnDelete, so nothing restarts the server: a
sidecar in the server pod (``shareProcessNamespace``) watches the mounted files and sends SIGHUP to the
``<cli> server`` process when they change.

``reload_script`` is the sidecar's whole program (POSIX sh, busybox-compatible: the sidecar runs the server's
own image); ``reload_container`` is the container spec for the chart's ``server.extraContainers``. A test runs
the exact script against a real ``bao server`` and swaps the files the way the kubelet does.
"""

import copy
import shlex

RELOAD_CONTAINER = "tls-reload"
DEFAULT_INTERVAL_SECONDS = 10
# Files whose change means a new certificate. The private key is deliberately not read by the watcher: cert-manager
# rotates it with the certificate (rotationPolicy Always) and the kubelet swaps all files at once.
WATCHED_FILES = ("tls.crt", "ca.crt")
RELOAD_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "50m", "memory": "32Mi"}}


def reload_script(cli, watch_dir, interval_seconds=DEFAULT_INTERVAL_SECONDS, proc_root="/proc"):
    """The sidecar's POSIX sh program: poll ``watch_dir`` every ``interval_seconds``, SIGHUP ``<cli> server``.

    The fingerprint is the ``..data`` link target (the kubelet's swap) plus a checksum of the watched files, so a
    change by any other writer is seen too. The server process is found in the shared PID namespace by its argv
    (``<cli> server ...``; the chart's ``/bin/sh -ec`` wrapper and probes such as ``<cli> status`` do not match).
    ``proc_root`` is ``/proc`` but in tests. The signal is sent only after a change, never at start: a SIGHUP before
    the server installed its handler would end it.
    """
    if not cli or any(ch in cli for ch in " /'\"$"):
        raise ValueError("cli must be a bare command name, got %r" % (cli,))
    if not (isinstance(interval_seconds, (int, float)) and 0 < interval_seconds <= 300):
        raise ValueError("interval_seconds must be in (0, 300], got %r" % (interval_seconds,))
    files = " ".join('"$dir/%s"' % name for name in WATCHED_FILES)
    lines = [
        "# heracles tls-reload: SIGHUP the %s server when its mounted certificate changes." % cli,
        "set -u",
        "dir=%s" % shlex.quote(watch_dir),
        "proc=%s" % shlex.quote(proc_root),
        "interval=%s" % interval_seconds,
        "fingerprint() {",
        '  readlink "$dir/..data"',
        "  cat %s 2>&1 | cksum" % files,
        "}",
        "server_pid() {",
    ]
    lines += [
        '  for entry in "$proc"/[0-9]*; do',
        '    argv=$( (tr \'\\000\' \'\\n\' < "$entry/cmdline") 2>&- | head -n 2 | tr \'\\n\' \' \')',
        '    case "$argv" in',
        '      "%s server "|*"/%s server ") echo "${entry##*/}"; return 0 ;;' % (cli, cli),
        "    esac",
        "  done",
        "  return 1",
        "}",
        "last=$(fingerprint)",
        'echo "tls-reload: watching $dir every ${interval}s"',
        "while :; do",
        '  sleep "$interval"',
        "  now=$(fingerprint)",
        '  [ "$now" = "$last" ] && continue',
        "  if pid=$(server_pid) && kill -HUP \"$pid\"; then",
        '    echo "tls-reload: $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) certificate changed,'
        ' SIGHUP sent to %s server (pid $pid)"' % cli,
        "    last=$now",
        "  else",
        '    echo "tls-reload: certificate changed but no %s server process could be signalled; retrying" >&2' % cli,
        "  fi",
        "done",
    ]
    script = "\n".join(lines) + "\n"
    if "{{" in script:  # the openbao chart passes extraContainers through tpl
        raise ValueError("the reload script must not contain '{{'")
    return script


def reload_container(image, cli, watch_dir, volume_name, run_as_user, run_as_group,
                     interval_seconds=DEFAULT_INTERVAL_SECONDS, resources=None):
    """The sidecar for ``server.extraContainers``: the server's image, the TLS volume read-only, same UID, no privilege.

    Signalling another container's process needs the same UID (no capability is granted), so the sidecar runs as
    the server's user; it drops every capability, cannot escalate and has a read-only root filesystem.
    """
    return {
        "name": RELOAD_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", reload_script(cli, watch_dir, interval_seconds)],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as_user,
            "runAsGroup": run_as_group,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": copy.deepcopy(resources or RELOAD_RESOURCES),
        "volumeMounts": [{"name": volume_name, "mountPath": watch_dir, "readOnly": True}],
    }
