def handler(event, context):
    return {"order": event.get("id")}
