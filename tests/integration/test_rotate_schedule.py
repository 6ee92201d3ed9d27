"""rotate-schedule.yml: the rotation timer, the way backup-schedule.yml schedules backups (cron and systemd).

No cluster is needed: the role only writes (and removes) the cron.d entry or the unit files. Both methods run
for real into a temporary directory, then again (nothing changes), then with rotate_schedule_state=absent.
"""

import os

from heracles_playbook import Runner, recap


def test_rotate_schedule_cron_and_systemd_idempotent_and_removable(tmp_path):
    cron_file = str(tmp_path / "cron.d" / "heracles-vault-rotate")
    os.makedirs(os.path.dirname(cron_file))
    units = tmp_path / "units"
    units.mkdir()
    for method, extra in (("cron", dict(rotate_schedule_cron_file=cron_file, rotate_schedule_cron="41 4 * * *",
                                        rotate_schedule_extra_args="-e rotate_kube_context=prod")),
                          ("systemd", dict(rotate_schedule_systemd_dir=str(units), rotate_schedule_manage_service=False))):
        runner = Runner(tmp_path, dict(rotate_schedule_method=method, rotate_schedule_user="root", **extra))
        first = runner.run("rotate-schedule.yml")
        assert first.returncode == 0 and recap(first)["changed"] >= 1, first.stdout[-3000:]
        again = runner.run("rotate-schedule.yml")
        assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]
        if method == "cron":
            cron = open(cron_file).read()
            lines = [line for line in cron.splitlines() if line and not line.startswith(("#", "SHELL="))]
            assert len(lines) == 1 and lines[0].startswith("41 4 * * * root cd "), cron
            assert "ansible-playbook -i " in lines[0] and lines[0].endswith(
                "playbooks/rotate.yml -e rotate_kube_context=prod >> /var/log/heracles-vault-rotate.log 2>&1"), cron
        else:
            timer = (units / "heracles-vault-rotate.timer").read_text()
            service = (units / "heracles-vault-rotate.service").read_text()
            assert "OnCalendar=*-*-* 03:30:00" in timer and "Persistent=true" in timer
            assert "Type=oneshot" in service
            assert service.split("ExecStart=", 1)[1].splitlines()[0].endswith("playbooks/rotate.yml'"), service
        gone = runner.run("rotate-schedule.yml", "-e", "rotate_schedule_state=absent")
        assert gone.returncode == 0 and recap(gone)["changed"] >= 1, gone.stdout[-3000:]
    assert not os.path.exists(cron_file) and list(units.iterdir()) == []
