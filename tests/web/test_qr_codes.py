"""The receipt's QR code (CONTRACT "The hall"; Shantou art. 17 (二)): a PNG or SVG of the case's rating link,
decoded back with zxing-cpp (a maintained decoder, not ours); a rating given through it is stored with channel
`qr`."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import zxingcpp
from helpers import TOKEN, Hcp
from PIL import Image
from servers import BACKENDS

from bot.web.qr_codes import qr_link


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def decoded(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_png_holds_the_rating_link_and_a_rating_through_it_is_stored_as_qr(hcp: Hcp) -> None:
    case = await hcp.post_case()

    status, _ = await hcp.api("GET", f"/api/v1/cases/{case['case_no']}/qr", token=None)
    resp = await hcp.client.get(f"/api/v1/cases/{case['case_no']}/qr", headers={"Authorization": "Bearer " + "x"})
    assert (status, resp.status) == (401, 401)
    resp = await hcp.client.get(f"/api/v1/cases/{case['case_no']}/qr", headers=auth())
    png = await resp.read()

    assert resp.status == 200 and resp.content_type == "image/png"
    [link] = decoded(png)
    assert link == qr_link(hcp.rt.links.url(case["id"])) and link.endswith("?via=qr")
    width, height = Image.open(io.BytesIO(png)).size
    assert width == height and 180 <= width <= 320  # about 2–3 cm on a receipt printer
    path = link.split("hcp.example.gov.cn", 1)[1]
    page = await hcp.client.get(path)
    form_token = (await page.text()).split('name="form_token" value="', 1)[1].split('"', 1)[0]
    sent = await hcp.client.post(path, data={"grade": "satisfied", "form_token": form_token}, allow_redirects=False)
    assert page.status == 200 and sent.status == 303 and "via=qr" in sent.headers["Location"]
    [stored] = await hcp.evaluations(case["case_no"])
    assert (stored["grade"], stored["channel"]) == ("satisfied", "qr")


async def test_svg_scale_and_the_refusals(hcp: Hcp) -> None:
    case = await hcp.post_case()
    base = f"/api/v1/cases/{case['case_no']}/qr"

    svg = await hcp.client.get(base + "?format=svg", headers=auth())
    big = await hcp.client.get(base + "?scale=10", headers=auth())
    bad = await hcp.client.get(base + "?format=gif&scale=0", headers=auth())
    unknown = await hcp.client.get("/api/v1/cases/NO-SUCH-CASE/qr", headers=auth())

    text = await svg.text()
    assert svg.status == 200 and svg.content_type == "image/svg+xml" and text.lstrip().startswith("<?xml")
    assert "<svg" in text and "via=qr" not in text  # the link is in the modules, not in the markup
    assert big.status == 200 and Image.open(io.BytesIO(await big.read())).size[0] > 320
    assert bad.status == 422 and {e["field"] for e in (await bad.json())["errors"]} == {"format", "scale"}
    assert unknown.status == 404



async def test_a_windows_static_code_lists_its_last_hour_masked_and_rates_the_chosen_case_as_qr(hcp: Hcp) -> None:
    hall = "440507-ZW01"
    now = hcp.clock()
    mine = await hcp.post_case(hall_code=hall, window_no="8", completed_at=(now - timedelta(minutes=5)).isoformat(),
                               applicant={"name": "张三", "locale": "zh-CN"})
    await hcp.post_case(hall_code=hall, window_no="8", completed_at=(now - timedelta(hours=2)).isoformat())
    await hcp.post_case(hall_code=hall, window_no="9", completed_at=now.isoformat())

    resp = await hcp.client.get(f"/api/v1/hall/windows/qr?hall_code={hall}&window_no=8", headers=auth())
    [url] = decoded(await resp.read())
    path = url.split("hcp.example.gov.cn", 1)[1]
    page = await hcp.client.get(path)
    html = await page.text()
    forged = await hcp.client.get(path.rsplit("/", 1)[0] + "/AAAAAAAAAAAAAAAAAAAAAA")
    missing = await hcp.client.get("/api/v1/hall/windows/qr?hall_code=" + hall, headers=auth())

    assert resp.status == 200 and path.startswith(f"/hall/w/{hall}/8/")
    assert page.status == 200 and html.count('href="/r/') == 1  # the last hour of this window only
    assert mine["case_no"] not in html and mine["case_no"][-4:] in html and "张*" in html and "张三" not in html
    assert forged.status == 404 and missing.status == 422
    link = html.split('href="/r/', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    link = "/r/" + link
    opened = await hcp.client.get(link)
    form_token = (await opened.text()).split('name="form_token" value="', 1)[1].split('"', 1)[0]
    await hcp.client.post(link, data={"grade": "very_satisfied", "form_token": form_token})
    [ev] = await hcp.evaluations(mine["case_no"])
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "qr")
    assert (await hcp.case(mine["case_no"]))["window_no"] == "8"
