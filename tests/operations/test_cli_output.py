"""What an operator reads from the CLI: times as RFC 3339, and completion scripts that a
shell really completes with."""
import re
import subprocess

from tapwire_support import BIN


def test_interface_list_shows_when_an_agent_last_reported_as_rfc3339(server):
    eni = server.register("198.18.40.7", host="web7")
    report = {"applied_revision": 0, "host": "web7",
              "interface": {"name": "eth0", "applied_revision": 0, "sessions": [], "rules": []}}
    status, _ = server.v1("POST", f"/tapwire/v1/network-interfaces/{eni}/status", report)
    assert status in (200, 204), status
    (row,) = [r for r in server.cli("interface", "list") if r["NetworkInterfaceId"] == eni]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", row["Agent"]["ReportedAt"]), row
    table = server.cli("interface", "list", output="table")
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", table), table


def test_bash_completes_subcommands_and_options():
    script = subprocess.run([BIN, "completions", "bash"], capture_output=True, text=True, check=True).stdout
    # As bash calls it on Tab: the words so far, and the function given (command, word, previous word).
    complete = script + '\nCOMP_WORDS=(tapwire se); COMP_CWORD=1; _tapwire tapwire se tapwire; printf "%s\\n" "${COMPREPLY[@]}"'
    words = subprocess.run(["bash", "-c", complete], capture_output=True, text=True, check=True)
    assert set(words.stdout.split()) == {"sensor-group", "server", "session"}
    complete = script + ('\nCOMP_WORDS=(tapwire session status --wa); COMP_CWORD=3; _tapwire tapwire --wa status; '
                         'printf "%s\\n" "${COMPREPLY[@]}"')
    words = subprocess.run(["bash", "-c", complete], capture_output=True, text=True, check=True)
    assert words.stdout.split() == ["--wait-active"]


def test_zsh_and_fish_scripts_are_made_for_every_subcommand():
    for shell, marker in (("zsh", "#compdef tapwire"), ("fish", "complete -c tapwire")):
        script = subprocess.run([BIN, "completions", shell], capture_output=True, text=True, check=True).stdout
        assert marker in script
        for sub in ("server", "agent", "session", "top", "receive", "completions"):
            assert sub in script, (shell, sub)


def test_an_unknown_shell_is_refused():
    done = subprocess.run([BIN, "completions", "tcsh"], capture_output=True, text=True)
    assert done.returncode == 2 and "possible values" in done.stderr
