"""Before any test module imports aws_cdk: keep jsii's Node support banner out of the output."""

from cdk import quiet_node_banner

quiet_node_banner()
