"""Write the workload-delivery objects of a stack as YAML, one file per object (``make manifests ENV=<env>``).

The objects are exactly those ``pulumi/platform`` applies for the stack (``heracles_pulumi.stack.delivery_objects``
from ``Pulumi.yaml`` defaults, ``Pulumi.<env>.yaml`` and ``vault/``), for teams that deploy through GitOps.
The output folder is emptied of earlier ``*.yaml`` first, so an object removed from the data disappears too.
"""

import argparse
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# pylint: disable=wrong-import-position
from heracles_pulumi import delivery, stack, vaultdata  # noqa: E402
from heracles_pulumi.settings import PlatformSettings, settings_from_files  # noqa: E402

PROJECT_DIR = os.path.join(HERE, "platform")


def render(env):
    """``[object, ...]`` the platform stack ``env`` applies (the stack file is Pulumi.<env>.yaml)."""
    settings, values = settings_from_files(PlatformSettings, PROJECT_DIR, env)
    desired, workloads = stack.declared(settings)
    server = stack.server_spec(settings, values.get("aws:region", ""), desired)
    return stack.delivery_objects(settings, server, workloads)


def write(objects, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(".yaml"):
            os.unlink(os.path.join(out_dir, name))
    names = []
    for obj in objects:
        name = delivery.file_name(obj)
        if name in names:
            raise SystemExit("two objects would be written to %s" % name)
        with open(os.path.join(out_dir, name), "w") as handle:
            handle.write("# %s -- rendered by make manifests from vault/ and pulumi/platform; do not edit\n"
                         % delivery.object_id(obj))
            yaml.safe_dump(obj, handle, sort_keys=False, default_flow_style=False, width=120)
        names.append(name)
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the stack / environment (vault/environments/<env>.yml)")
    parser.add_argument("--out", required=True, help="folder for the YAML files")
    args = parser.parse_args(argv)
    try:
        objects = render(args.env)
    except (vaultdata.loader().VaultDataError, ValueError, OSError) as exc:
        raise SystemExit("make manifests ENV=%s: %s" % (args.env, exc))
    names = write(objects, args.out)
    kinds = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    print("%d objects for %s in %s: %s" % (len(names), args.env, args.out,
                                           ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    main()
