"""End to end in a real headless Chromium: an upgrade is requested, approved, and seen started."""

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from instances.choices import OperationStatus, RequestStatus
from instances.models import ChangeRequest, Operation
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        "--lang=en",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(browser):
    return WebDriverWait(browser, 15)


def log_in(browser, live_server, username):
    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/accounts/login/")
    browser.find_element(By.NAME, "login").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form[action='/accounts/login/'] button[type=submit]").click()
    wait(browser).until(ec.url_to_be(f"{live_server.url}/"))


def test_upgrade_requested_approved_and_seen_started(
    browser, live_server, queues, admin_unistra, maintainer, instance_unistra, versions
):
    # The functional admin asks for 1.2.6 from the instance page.
    log_in(browser, live_server, "admin-unistra")
    browser.get(f"{live_server.url}/instances/smile-unistra/")
    browser.find_element(By.LINK_TEXT, "Upgrade").click()
    version = Select(browser.find_element(By.NAME, "version"))
    version.select_by_value(next(o.get_attribute("value") for o in version.options if "1.2.6" in o.text))
    browser.find_element(By.NAME, "comment").send_keys("New term starts soon")
    browser.find_element(By.XPATH, "//button[normalize-space()='Request the upgrade']").click()
    wait(browser).until(ec.url_matches(r"/requests/\d+/$"))
    request = ChangeRequest.objects.get()
    assert request.status == RequestStatus.SUBMITTED
    assert request.target_version.version == "1.2.6"
    assert "Submitted" in browser.find_element(By.TAG_NAME, "main").text
    # A functional admin sees no approval button on their own request.
    assert not browser.find_elements(By.XPATH, "//button[normalize-space()='Approve']")

    # The maintainer finds it in the approval queue and approves it.
    log_in(browser, live_server, "maintainer")
    browser.get(f"{live_server.url}/requests/")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/requests/{request.pk}/']").click()
    wait(browser).until(ec.url_to_be(f"{live_server.url}/requests/{request.pk}/"))
    browser.find_element(By.XPATH, "//button[normalize-space()='Approve']").click()
    # Due now, it starts as soon as the approval commits: its operation is queued for a worker.
    wait(browser).until(lambda b: ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.RUNNING)
    assert Operation.objects.get(request=request).status == OperationStatus.QUEUED

    # Back as the functional admin: the request shows running on its page and on the dashboard.
    log_in(browser, live_server, "admin-unistra")
    browser.get(f"{live_server.url}/requests/{request.pk}/")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "Running" in main and "Approved" in main  # the status, and the approval in its timeline
    browser.get(f"{live_server.url}/")
    assert "Running" in browser.find_element(By.TAG_NAME, "main").text
    # No page along the way made the browser report an error (a missing file, a failed script).
    assert [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


def test_the_live_rollout_and_the_api_docs_work_under_the_content_security_policy(
    browser, live_server, admin_unistra, instance_unistra
):
    from instances.choices import RolloutState
    from instances.models import RolloutSnapshot

    log_in(browser, live_server, "admin-unistra")
    browser.get(f"{live_server.url}/instances/smile-unistra/")
    RolloutSnapshot.objects.create(
        instance=instance_unistra,
        kind="Deployment",
        component="live-check",
        desired=2,
        ready=1,
        state=RolloutState.PROGRESSING,
    )

    # live.js (a file, as the policy requires) fetches the card again within its interval and shows the workload.
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "rollout"), "live-check"))

    browser.get(f"{live_server.url}/api/v1/docs/")
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], "no script, style or request refused by the Content-Security-Policy"
