"""The web console in a real headless Chromium against a real `ferry dev` stack.

Each test signs in by pasting a token, as a person would, and checks what the pages show;
the Kafka checks use a real client (confluent-kafka) against the brokers the console lists.
Screenshots of every page go to tests/artifacts/console/.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from playwright.sync_api import expect

from conftest import shot, sign_in

# Bounds: a 3+3 cluster is ACTIVE in ~6 s on the dev stack; deleting takes a few seconds.
ACTIVE_TIMEOUT_MS = 120_000
DELETED_TIMEOUT_MS = 90_000
KAFKA_TIMEOUT_S = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_root_redirects_to_the_console_and_every_asset_is_local(stack, page):
    req = urllib.request.Request(stack.url + "/", method="GET")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(req, timeout=10)
        raise AssertionError("/ did not redirect")
    except urllib.error.HTTPError as err:
        assert err.code == 302 and err.headers["Location"] == "/console"
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    response = page.goto("/")
    assert response.url.endswith("/console")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_role("heading", level=1, name="Sign in to Ferry").wait_for()
    assert requested, "the page made no requests"
    outside = [u for u in requested if not u.startswith(stack.url)]
    assert not outside, f"the console fetched from elsewhere: {outside}"
    shot(page, "01-sign-in")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_sign_in_refuses_a_bad_token_and_sign_out_forgets_the_good_one(stack, page):
    page.goto("/console")
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#token-error")
    assert "three dot-separated parts" in error.inner_text()
    assert page.get_by_label("API token").get_attribute("aria-invalid") == "true"
    # A well-formed token the API does not accept (signed with another secret).
    forged = stack.admin_token.rsplit(".", 1)[0] + ".AAAA"
    page.get_by_label("API token").fill(forged)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_contain_text("refused")
    shot(page, "02-sign-in-refused")

    sign_in(page, stack.admin_token)
    assert page.evaluate("sessionStorage.length") == 1
    assert "admin" in page.locator("#session-who").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", level=1, name="Sign in to Ferry").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto("/console#/clusters")
    page.get_by_role("heading", level=1, name="Sign in to Ferry").wait_for()


def test_keyboard_alone_signs_in_and_reaches_the_create_workflow(stack, page):
    page.goto("/console")
    page.get_by_role("heading", level=1, name="Sign in to Ferry").wait_for()
    # The skip link moves focus to the content.
    page.locator(".skip-link").focus()
    assert page.locator(".skip-link").bounding_box()["x"] >= 0, "the focused skip link is off screen"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Navigation puts focus on the page's heading; the next Tab reaches the token field.
    page.goto("/console#/signin")
    page.get_by_role("heading", level=1, name="Sign in to Ferry").wait_for()
    assert page.evaluate("document.activeElement.tagName") == "H1"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.insert_text(stack.admin_token)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Clusters").wait_for()
    # Tab through the page until the "Create cluster" link, then follow it.
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "create-cluster":
            break
    else:
        raise AssertionError("Create cluster is not reachable with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused element shows no focus ring"
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Create cluster").wait_for()


def test_custom_create_a_3_broker_cluster_use_it_and_delete_it(stack, page):
    name = unique("console")
    sign_in(page, stack.admin_token)
    shot(page, "03-cluster-list-empty")
    page.get_by_role("link", name="Create cluster").first.click()
    page.get_by_role("heading", level=1, name="Create cluster").wait_for()
    shot(page, "04-quick-create")
    page.get_by_label("Custom create").check()

    # Step 1: cluster settings. 1 broker per zone x 3 zones = 3 brokers.
    page.get_by_label("Cluster name").fill(name)
    page.get_by_label("Brokers per zone").fill("1")
    for zone in "abc":
        assert page.locator(f"#zone-zone-{zone}").is_checked()
    assert "Total: 3 brokers" in page.locator("#broker-total").inner_text()
    page.get_by_label("3", exact=True).check()
    page.get_by_label("Storage per broker (GiB)").fill("2")
    page.get_by_label("Broker configuration overrides (optional)").fill("num.partitions=3\n")
    page.get_by_label("Tags (optional)").fill("team=console\n")
    shot(page, "05-custom-create-settings")
    page.get_by_role("button", name="Next").click()

    # Step 2: security says what exists today.
    page.get_by_role("heading", name="Step 2: Security").wait_for()
    security = page.locator("#client-security").inner_text()
    assert "PLAINTEXT" in security and "TLS" in security and "not available yet" in security
    shot(page, "06-custom-create-security")
    page.get_by_role("button", name="Next").click()

    # Step 3: review, then create.
    page.get_by_role("heading", name="Step 3: Review and create").wait_for()
    review = page.locator("#review-settings").inner_text()
    assert name in review and "3 (1 per zone)" in review and "num.partitions=3" in review and "team=console" in review
    shot(page, "07-custom-create-review")
    page.get_by_role("button", name="Create cluster").click()

    # The cluster page shows the CREATE operation progressing, then ACTIVE.
    page.get_by_role("heading", level=1, name=name).wait_for()
    page.locator("#operation-steps li").first.wait_for()
    shot(page, "08-cluster-creating")
    page.locator("#cluster-state [data-state='CLUSTER_STATE_ACTIVE']").wait_for(timeout=ACTIVE_TIMEOUT_MS)
    # The change was announced to screen readers through the page's aria-live region.
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"
    expect(page.locator("#announcer")).to_contain_text(f"Cluster {name} is now Active")
    expect(page.locator("#nodes tbody tr")).to_have_count(6)
    assert page.locator("#nodes [data-state='NODE_STATE_RUNNING']").count() == 6
    zones = page.locator("#nodes table").evaluate_all("ts => ts.map(t => t.dataset.zone)")
    assert zones == ["zone-a", "zone-b", "zone-c"]
    expect(page.locator("#cluster-summary")).to_contain_text("team=console")
    history = page.locator("#operations-table").inner_text()
    assert "Create" in history and "Succeeded" in history
    shot(page, "09-cluster-active")

    # Client information: bootstrap servers, copied to the clipboard.
    page.get_by_role("button", name="View client information").click()
    assert page.get_by_role("button", name="View client information").get_attribute("aria-expanded") == "true"
    bootstrap = page.get_by_label("Bootstrap servers (PLAINTEXT)").input_value()
    assert len(bootstrap.split(",")) == 3 and all(re.fullmatch(r"127\.0\.0\.1:\d+", b) for b in bootstrap.split(","))
    page.get_by_role("button", name="Copy bootstrap servers").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == bootstrap
    java_config = page.locator("#config-java").inner_text()
    assert f"bootstrap.servers={bootstrap}" in java_config
    # The idempotent producer is served, so the Java snippet keeps Kafka's default.
    assert "enable.idempotence=true" in java_config, java_config
    assert "enable.idempotence=false" not in java_config, java_config
    assert f"bootstrap.servers={bootstrap}" in page.locator("#config-librdkafka").inner_text()
    page.get_by_role("button", name="Copy librdkafka config").click()
    librdkafka_config = page.evaluate("navigator.clipboard.readText()")
    shot(page, "10-client-information")

    # Produce to the copied servers with the copied config, and read it back.
    config = dict(line.split("=", 1) for line in librdkafka_config.splitlines() if line and not line.startswith("#"))
    assert config.get("acks") == "all", config
    produce_and_consume(config, topic=f"console-{uuid.uuid4().hex[:8]}")

    # The hosts page shows what runs where.
    page.get_by_role("link", name="Hosts").click()
    page.get_by_role("heading", level=1, name="Hosts").wait_for()
    expect(page.locator("#hosts")).to_contain_text(name)
    for zone in "abc":
        assert page.locator(f"[data-host='dev-zone-{zone}']").count() == 1
    shot(page, "11-hosts")
    page.go_back()
    page.get_by_role("heading", level=1, name=name).wait_for()

    # Delete: the button stays disabled until the name is typed exactly.
    cluster_id = page.url.rsplit("/", 1)[1]
    ports = stack.cluster_ports(cluster_id)
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type the cluster name to confirm").fill(name[:-1])
    assert dialog.get_by_role("button", name="Delete cluster").is_disabled()
    dialog.get_by_label("Type the cluster name to confirm").fill(name)
    shot(page, "12-delete-confirmation")
    dialog.get_by_role("button", name="Delete cluster").click()
    page.locator("#cluster-gone").wait_for(timeout=DELETED_TIMEOUT_MS)
    shot(page, "13-cluster-deleted")
    page.get_by_role("link", name="Back to clusters").click()
    page.get_by_role("heading", level=1, name="Clusters").wait_for()
    expect(page.locator("#list-status")).not_to_have_text("")
    assert page.locator(f"tr[data-cluster='{name}']").count() == 0
    status, body = stack.request("GET", f"/v1/clusters?namePrefix={name}", token=stack.admin_token)
    assert status == 200 and not body.get("clusters")
    stack.wait_cluster_gone(cluster_id, ports)


def produce_and_consume(config: dict, topic: str) -> None:
    admin = AdminClient(config)
    # Three replicas of each of 3 partitions (every broker leads one), written with the
    # copied config's acks=all.
    futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)], request_timeout=30)
    futures[topic].result(timeout=KAFKA_TIMEOUT_S)
    producer = Producer({**config, "message.timeout.ms": 30000})
    delivered = []
    for i in range(5):
        producer.produce(topic, f"console-{i}".encode(), partition=i % 3, on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(KAFKA_TIMEOUT_S) == 0
    assert delivered == [None] * 5, delivered
    # No group coordinator in the broker yet: read with explicit assignments, no commits.
    consumer = Consumer({
        **config,
        "group.id": "console-test-unused",
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
    got = []
    deadline = time.monotonic() + KAFKA_TIMEOUT_S
    try:
        while len(got) < 5 and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                got.append(msg.value().decode())
    finally:
        consumer.close()
    assert sorted(got) == [f"console-{i}" for i in range(5)]


def test_the_list_refreshes_itself_while_a_quick_created_cluster_becomes_active(stack, page):
    sign_in(page, stack.admin_token)
    page.get_by_role("link", name="Create cluster").first.click()
    defaults = page.locator("#quick-defaults").inner_text()
    for expected in ["3.9.0", "zone-a, zone-b, zone-c", "3 (1 per zone)", "PLAINTEXT"]:
        assert expected in defaults, f"{expected!r} not in the Quick create defaults:\n{defaults}"
    name = unique("quick")
    page.get_by_label("Cluster name").fill(name)
    page.get_by_role("button", name="Create cluster").click()
    page.get_by_role("heading", level=1, name=name).wait_for()
    page.get_by_role("link", name="Clusters", exact=True).first.click()
    row = page.locator(f"tr[data-cluster='{name}']")
    row.wait_for()
    # No reload: the list polls while the cluster changes.
    row.locator("[data-state='CLUSTER_STATE_ACTIVE']").wait_for(timeout=ACTIVE_TIMEOUT_MS)
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["3.9.0", "3", "3", "zone-a, zone-b, zone-c"], cells
    page.get_by_label("Filter by name").fill("no-such-prefix")
    page.get_by_text("No cluster name starts with").wait_for()
    page.get_by_label("Filter by name").fill(name[:8])
    row.wait_for()
    shot(page, "14-cluster-list")
    # Leave the stack as found.
    stack.delete_cluster_and_wait(row.get_attribute("data-id"))


def test_invalid_choices_are_explained_beside_their_fields_before_and_after_submitting(stack, page):
    sign_in(page, stack.admin_token)
    page.goto("/console#/create")
    page.get_by_label("Custom create").check()
    name = page.get_by_label("Cluster name")
    name.fill("bad name!")
    assert "only letters, digits and '-', not a space" in page.locator("#name-error").inner_text()
    assert name.get_attribute("aria-invalid") == "true"
    page.get_by_label("Brokers per zone").fill("25")
    brokers_error = page.locator("#brokers-per-zone-error").inner_text()
    assert "75 brokers" in brokers_error and "at most 60" in brokers_error and "at most 20 per zone" in brokers_error
    # Fewer zones: the same count is fine again, and the total follows.
    page.locator("#zone-zone-c").uncheck()
    assert page.locator("#brokers-per-zone-error").inner_text() == ""
    assert "Total: 50 brokers" in page.locator("#broker-total").inner_text()
    page.locator("#zone-zone-c").check()
    page.get_by_label("Tags (optional)").fill("ferry:owner=me")
    assert "reserved" in page.locator("#tags-error").inner_text()
    page.get_by_role("button", name="Next").click()
    # Still on step 1, with a summary naming every problem.
    summary = page.locator("#error-summary")
    assert "Fix these" in summary.inner_text()
    assert page.get_by_role("heading", name="Step 1: Cluster settings").is_visible()
    shot(page, "15-validation-before-submitting")

    # Fix what the console checks; leave a broker config only the API can judge.
    name.fill(unique("badconfig"))
    page.get_by_label("Tags (optional)").fill("")
    page.get_by_label("Brokers per zone").fill("1")
    page.get_by_label("Broker configuration overrides (optional)").fill("num.partitions=zero\n")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create cluster").click()
    config_error = page.locator("#broker-config-error")
    config_error.wait_for()
    expect(config_error).to_contain_text("num.partitions")
    assert page.get_by_label("Broker configuration overrides (optional)").get_attribute("aria-invalid") == "true"
    assert "The API refused the cluster" in summary.inner_text()
    assert page.get_by_role("heading", name="Step 1: Cluster settings").is_visible()
    shot(page, "16-validation-from-the-api")


def test_a_viewer_sees_no_create_or_delete_and_the_api_refuses_it(stack, page):
    # A cluster for the viewer to look at, made by the admin through the API.
    name = unique("viewed")
    spec = {"name": name, "kafkaVersion": "3.9.0", "brokerCount": 3, "controllerCount": 3,
            "zones": ["zone-a", "zone-b", "zone-c"], "storagePerBrokerBytes": str(1 << 30)}
    status, created = stack.request("POST", "/v1/clusters", {"spec": spec}, token=stack.admin_token)
    assert status == 200, created
    cluster_id = created["cluster"]["id"]
    try:
        sign_in(page, stack.viewer_token)
        assert "viewer" in page.locator("#session-who").inner_text()
        page.locator(f"tr[data-cluster='{name}']").wait_for()
        assert page.locator("#create-cluster").count() == 0
        assert page.get_by_role("link", name="Create cluster").count() == 0
        shot(page, "17-viewer-cluster-list")
        page.get_by_role("link", name=name).click()
        page.get_by_role("heading", level=1, name=name).wait_for()
        page.get_by_role("button", name="View client information").wait_for()
        assert page.get_by_role("button", name="Delete").count() == 0
        shot(page, "18-viewer-cluster-page")
        page.goto("/console#/create")
        assert "cannot create clusters" in page.get_by_role("note").inner_text()
        page.goto("/console#/hosts")
        assert "needs the admin role" in page.get_by_role("note").inner_text()
        # The API refuses the viewer, whatever the page shows.
        spec2 = {**spec, "name": unique("refused")}
        status, body = stack.request("POST", "/v1/clusters", {"spec": spec2}, token=stack.viewer_token)
        assert status == 403 and body["code"] == "PERMISSION_DENIED", body
        status, body = stack.request("DELETE", f"/v1/clusters/{cluster_id}", token=stack.viewer_token)
        assert status == 403, body
    finally:
        stack.delete_cluster_and_wait(cluster_id)


def test_an_api_field_error_on_the_broker_count_appears_beside_brokers_per_zone(stack, page):
    """The console cannot send 4 brokers over 3 zones (it asks for brokers per zone), so the
    request is altered on its way to the API, which refuses it with a `broker_count` field
    violation that the console must place beside "Brokers per zone"."""
    sign_in(page, stack.admin_token)
    sent: list[dict] = []

    def four_brokers(route):
        body = json.loads(route.request.post_data)
        body["spec"]["brokerCount"] = 4
        sent.append(body)
        route.continue_(post_data=json.dumps(body))

    page.route("**/v1/clusters", lambda route: four_brokers(route) if route.request.method == "POST" else route.continue_())
    page.goto("/console#/create")
    page.get_by_label("Custom create").check()
    page.get_by_label("Cluster name").fill(unique("four"))
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create cluster").click()
    error = page.locator("#brokers-per-zone-error")
    expect(error).to_contain_text("multiple of the number of zones (3)")
    assert page.get_by_label("Brokers per zone").get_attribute("aria-invalid") == "true"
    assert sent and sent[0]["spec"]["zones"] == ["zone-a", "zone-b", "zone-c"]
    shot(page, "19-api-broker-count-error")


def test_an_operator_grows_a_cluster_with_edit_number_of_brokers_but_cannot_delete(stack, page):
    name = unique("grown")
    spec = {"name": name, "kafkaVersion": "3.9.0", "brokerCount": 3, "controllerCount": 3,
            "zones": ["zone-a", "zone-b", "zone-c"], "storagePerBrokerBytes": str(1 << 30)}
    status, created = stack.request("POST", "/v1/clusters", {"spec": spec}, token=stack.admin_token)
    assert status == 200, created
    cluster_id = created["cluster"]["id"]
    try:
        sign_in(page, stack.mint("operator"))
        page.goto(f"/console#/clusters/{cluster_id}")
        page.get_by_role("heading", level=1, name=name).wait_for()
        assert page.get_by_role("button", name="Delete").count() == 0
        page.locator("#cluster-state [data-state='CLUSTER_STATE_ACTIVE']").wait_for(timeout=ACTIVE_TIMEOUT_MS)
        edit = page.get_by_role("button", name="Edit number of brokers")
        expect(edit).to_be_enabled()
        edit.click()
        dialog = page.get_by_role("dialog")
        per_zone = dialog.get_by_label("Brokers per zone")
        per_zone.fill("1")
        expect(dialog.locator("#new-brokers-error")).to_contain_text("more than the current 1 per zone")
        per_zone.fill("2")
        expect(dialog.locator("#new-brokers-hint")).to_contain_text("after: 6 brokers")
        shot(page, "20-edit-number-of-brokers")
        dialog.get_by_role("button", name="Save changes").click()
        # UPDATING with an operation, then ACTIVE with 6 brokers, without a reload.
        page.locator("#cluster-state [data-state='CLUSTER_STATE_UPDATING']").wait_for()
        expect(edit).to_be_disabled()
        page.locator("#cluster-state [data-state='CLUSTER_STATE_ACTIVE']").wait_for(timeout=ACTIVE_TIMEOUT_MS)
        expect(page.locator("#nodes tbody tr")).to_have_count(9)
        expect(page.locator("#nodes [data-state='NODE_STATE_RUNNING']")).to_have_count(9)
        expect(page.locator("#cluster-summary")).to_contain_text("6 over zones zone-a, zone-b, zone-c")
        expect(page.locator("#operations-table")).to_contain_text("Update broker count")
        shot(page, "21-cluster-grown")
    finally:
        stack.delete_cluster_and_wait(cluster_id)
