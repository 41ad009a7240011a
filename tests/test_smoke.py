import pytest

from cqrs import SYSTEM, CommandInput, InvokeContext

pytestmark = pytest.mark.engine


def test_publish_and_sync(cqrs_app, drain):
    orders = cqrs_app.entity("order")
    ctx = InvokeContext(tenant_code="acme", user_id="u1")
    orders.commands.publish_async(
        CommandInput(
            pk="ORDER#acme", sk="ORDER#1", code="1", name="a", tenant_code="acme", type="ORDER"
        ),
        ctx,
    )
    report = drain(cqrs_app)
    assert report.records == 1
    assert orders.data.get("ORDER#acme", "ORDER#1", context=SYSTEM).name == "a"
