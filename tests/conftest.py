"""Settings for every test module.

* jsii's Node support banner is kept out of the output (before any module imports aws_cdk).
* Hypothesis: no per-example deadline beyond hang detection. Speed targets live in the
  benchmarks (bench/); a deadline in a test only turns a loaded CI machine into failures.
"""

from hypothesis import settings

from cdk import quiet_node_banner

quiet_node_banner()
settings.register_profile("ramparts", deadline=60_000)
settings.load_profile("ramparts")
