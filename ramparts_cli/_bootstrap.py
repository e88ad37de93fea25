"""The runtime's bootstrap, as Lambda's managed Python runtime runs ``/var/runtime/bootstrap``.

``ramparts invoke`` runs this file by path (``python .../_bootstrap.py``), behind
``AWS_LAMBDA_EXEC_WRAPPER`` when one is set, exactly where Lambda puts its own bootstrap.
It reads the handler from ``_HANDLER`` and the Runtime API address from
``AWS_LAMBDA_RUNTIME_API`` and hands over to the real runtime interface client.

Keep it standard library + awslambdaric: it runs inside the function's process.
"""

import os
import sys


def main() -> None:
    # Run by path, Python puts this file's directory first on sys.path; in Lambda that
    # entry is the runtime's own directory, which holds nothing a function imports. Drop it
    # so that the CLI's modules can never shadow the function's.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    handler = os.environ.get("_HANDLER", "")
    api_address = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    if not handler or not api_address:
        sys.stderr.write("bootstrap: _HANDLER and AWS_LAMBDA_RUNTIME_API must be set\n")
        sys.exit(2)

    from awslambdaric import bootstrap
    from awslambdaric.lambda_config import LambdaConfigProvider
    from awslambdaric.lambda_runtime_client import LambdaRuntimeClient

    # As awslambdaric 4.x's own entry point does (single-concurrency mode): the config
    # decides thread polling from AWS_EXECUTION_ENV (the 3.12+ runtimes use it).
    config = LambdaConfigProvider([sys.argv[0], handler])
    client = LambdaRuntimeClient(config.api_address, config.use_thread_polling)
    bootstrap.run(config.handler, client)


if __name__ == "__main__":
    main()
