"""functions/subscriber.py: which log groups get the sensor subscription, idempotently."""

from __future__ import annotations

from functions.subscriber import Settings, Subscriber, handler

DEST = "arn:aws:logs:eu-west-1:111111111111:destination:ramparts-sensor-logs"


class NotFound(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.response = {"Error": {"Code": "ResourceNotFoundException"}}


class FakeLambda:
    def __init__(self, functions, tags):
        self.functions, self.tags = functions, tags

    def list_functions(self, Marker=None):
        if Marker is None:
            return {"Functions": self.functions[:1], "NextMarker": "m"}
        return {"Functions": self.functions[1:]}

    def list_tags(self, Resource):
        return {"Tags": self.tags.get(Resource, {})}

    def get_function_configuration(self, FunctionName):
        return next(f for f in self.functions if f["FunctionName"] == FunctionName)


class FakeLogs:
    def __init__(self, groups):
        self.groups = groups  # name -> list of filters
        self.calls = []

    def describe_subscription_filters(self, logGroupName):
        if logGroupName not in self.groups:
            raise NotFound(logGroupName)
        return {"subscriptionFilters": self.groups[logGroupName]}

    def create_log_group(self, logGroupName):
        self.calls.append(("create", logGroupName))
        self.groups[logGroupName] = []

    def put_retention_policy(self, logGroupName, retentionInDays):
        self.calls.append(("retention", logGroupName, retentionInDays))

    def put_subscription_filter(self, **kw):
        self.calls.append(("put", kw["logGroupName"]))
        self.groups[kw["logGroupName"]].append({k[0].lower() + k[1:]: v for k, v in kw.items()})


def fn(name, layers=(), group=None):
    cfg = {
        "FunctionName": name,
        "FunctionArn": f"arn:aws:lambda:eu-west-1:2:function:{name}",
        "Layers": [{"Arn": a} for a in layers],
    }
    if group:
        cfg["LoggingConfig"] = {"LogGroup": group}
    return cfg


def make():
    functions = [
        fn("with-layer", ["arn:aws:lambda:eu-west-1:1:layer:ramparts-sensor-py312-arm64:3"]),
        fn("tagged", group="/custom/tagged"),
        fn("plain", ["arn:aws:lambda:eu-west-1:1:layer:other:1"]),
    ]
    tags = {"arn:aws:lambda:eu-west-1:2:function:tagged": {"ramparts:protected": "true"}}
    logs = FakeLogs({"/custom/tagged": [], "/aws/lambda/plain": []})
    return Subscriber(Settings(destination_arn=DEST), FakeLambda(functions, tags), logs), logs


def test_reconcile_all_subscribes_protected_functions_only_and_is_idempotent():
    sub, logs = make()
    report = sub.reconcile_all()
    assert sorted(report.subscribed) == ["/aws/lambda/with-layer", "/custom/tagged"]
    assert ("create", "/aws/lambda/with-layer") in logs.calls  # not run yet: group created
    assert ("retention", "/aws/lambda/with-layer", 30) in logs.calls
    assert logs.groups["/custom/tagged"][0]["filterPattern"] == "{ $.ramparts >= 1 }"
    assert "/aws/lambda/plain" not in {c[1] for c in logs.calls}
    again = sub.reconcile_all()
    assert again.subscribed == [] and sorted(again.unchanged) == [
        "/aws/lambda/with-layer",
        "/custom/tagged",
    ]


def test_cloudtrail_events_reconcile_one_function():
    sub, _ = make()
    event = {
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": "lambda.amazonaws.com",
            "eventName": "TagResource20170331v2",
            "requestParameters": {"resource": "arn:aws:lambda:eu-west-1:2:function:tagged"},
        },
    }
    assert handler(event, None, subscriber=sub)["subscribed"] == ["/custom/tagged"]
    event = {
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": "logs.amazonaws.com",
            "eventName": "CreateLogGroup",
            "requestParameters": {"logGroupName": "/aws/lambda/plain"},
        },
    }
    assert handler(event, None, subscriber=sub) == {"subscribed": [], "unchanged": [], "failed": {}}


def test_a_failing_log_group_does_not_stop_the_rest():
    sub, logs = make()

    def boom(**kw):
        if kw["logGroupName"] == "/custom/tagged":
            raise RuntimeError("LimitExceededException: 2 filters")
        FakeLogs.put_subscription_filter(logs, **kw)

    logs.put_subscription_filter = boom
    report = handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, None, subscriber=sub
    )
    assert report["subscribed"] == ["/aws/lambda/with-layer"]
    assert "LimitExceeded" in report["failed"]["/custom/tagged"]
