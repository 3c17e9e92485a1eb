"""bash completion of aersctl (client/completion/aersctl.bash) against a
real aersd on the null backend: subcommands and options offline, node names,
parameters, kinds and presets from the daemon, through the same --socket the
command line being completed names.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
SCRIPT = os.path.join(aers_it.SOURCE_ROOT, "client", "completion", "aersctl.bash")


def complete(words, cur_index=None):
    """COMPREPLY for the command line `words` (the last word is being typed)."""
    cur_index = len(words) - 1 if cur_index is None else cur_index
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    script = (f"source '{SCRIPT}'\n"
              f"COMP_WORDS=({quoted}); COMP_CWORD={cur_index}\n"
              "_aersctl\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(line for line in r.stdout.splitlines() if line)


class CompletionTest(aers_it.JackTestCase):
    tag = "compl"
    needs_jack = False

    def test_offline_words(self):
        self.assertEqual(complete([AERSCTL, "s"]), ["set", "status"])
        self.assertEqual(complete([AERSCTL, "plugin", ""]), ["hash", "keygen", "sign", "verify"])
        self.assertEqual(complete([AERSCTL, "plugin", "hash", "d", "--a"]), ["--algorithm"])
        self.assertEqual(complete([AERSCTL, "plugin", "hash", "--algorithm", ""]),
                         ["blake2b", "sha256"])
        self.assertEqual(complete([AERSCTL, "graph", "--"]), ["--dot", "--json", "--yaml"])
        self.assertIn("--expect-revision", complete([AERSCTL, "--e"]))

    def test_names_from_the_daemon(self):
        config = self.tmp.file("c.yaml")
        with open(config, "w") as f:
            f.write("""version: 1
backend: {type: "null"}
outputs: [{name: out, channels: 1}]
nodes:
  - {name: tone1, kind: tone}
  - {name: trim, kind: gain, params: {gain_db: -6}}
routes:
  - {from: tone1, to: trim}
  - {from: trim, to: out}
""")
        sock = self.tmp.file("c.sock")
        d = self.start_aersd(config, args=["--backend", "null", "--socket", sock])
        wait_until(lambda: subprocess.run([AERSCTL, "--socket", sock, "health"],
                                          capture_output=True).returncode == 0, 10, "serving")
        base = [AERSCTL, "--socket", sock]
        self.assertEqual(complete(base + ["set", ""]), ["tone1", "trim"])
        self.assertEqual(complete(base + ["set", "trim", ""]), ["gain_db", "mute"])
        self.assertIn("freq_hz", complete(base + ["set", "tone1", ""]))
        self.assertEqual(complete(base + ["rm", "t"]), ["tone1", "trim"])
        self.assertEqual(complete(base + ["connect", "tr"]), ["trim"])
        self.assertEqual(complete(base + ["connect", "o"]), ["out"])
        kinds = complete(base + ["add", "x", ""])
        for k in ("gain", "biquad", "tone", "meter"):
            self.assertIn(k, kinds)
        # No daemon at that socket: nothing offered, no error, no delay beyond the deadline.
        self.assertEqual(complete([AERSCTL, "--socket", self.tmp.file("none.sock"), "set", ""]), [])
        d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
