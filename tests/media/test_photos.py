"""Photo uploads end to end: stored once, bad bytes refused with a clear problem and nothing kept, EXIF and reuse
flagged for the reviewer, and tenants and assignees kept apart."""

from __future__ import annotations

import io
import json
import struct
import uuid
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from PIL import Image

from backend.media.service import count_proof_photos, photos_of_job
from backend.settings import Settings
from geo.distance import destination
from mobile_contract.auth import Role
from tests.factories import Factory, FieldUser
from tests.media.helpers import (
    SITE,
    Client,
    exif,
    jpeg,
    make_job,
    noise_image,
    photo_rows,
    reencoded,
    scene,
    shanghai_now,
    site_photo,
    upload,
)


async def technician_with_job(factory: Factory, **job: Any) -> tuple[UUID, FieldUser, UUID]:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    return tenant, tech, await make_job(factory, tenant, tech, **job)


async def proof_count(factory: Factory, tenant: UUID, job: UUID) -> int:
    async with factory.database.sessions() as session:
        return await count_proof_photos(session, tenant, job)


# -- storing -----------------------------------------------------------------------------------------------------


async def test_a_photo_is_stored_once_and_a_replay_answers_as_the_first_time(
    factory: Factory, media_client: Client, photo_dir: Path
) -> None:
    tenant, tech, job = await technician_with_job(factory)
    data = site_photo(1)
    photo_id = uuid.uuid4()

    first = await upload(media_client, tech, job, data, photo_id=photo_id)
    assert first.status_code == 201, first.text
    photo = first.json()
    assert photo["id"] == str(photo_id)
    assert photo["job_id"] == str(job)
    assert photo["user_id"] == str(tech.id)
    assert photo["content_type"] == "image/jpeg"
    assert (photo["width"], photo["height"], photo["size_bytes"]) == (1600, 1200, len(data))
    assert photo["flags"] == []
    assert photo["reused_from"] is None
    assert photo["exif"]["utc_offset_min"] == 480
    assert photo["exif"]["distance_m"] < 40
    assert len(photo["phash"]) == 16
    # On disk under tenant/sha256, before anything else could read the row.
    stored = photo_dir / str(tenant) / photo["sha256"][:2] / photo["sha256"]
    assert stored.read_bytes() == data

    replay = await upload(media_client, tech, job, data, photo_id=photo_id)
    assert replay.status_code == 200, replay.text
    assert replay.json() == photo

    other_bytes = await upload(media_client, tech, job, site_photo(2), photo_id=photo_id)
    assert other_bytes.status_code == 409
    assert other_bytes.json()["code"] == "idempotency_conflict"
    other_job = await make_job(factory, tenant, tech)
    same_bytes_other_job = await upload(media_client, tech, other_job, data, photo_id=photo_id)
    assert same_bytes_other_job.status_code == 409
    assert same_bytes_other_job.json()["code"] == "idempotency_conflict"

    assert await photo_rows(factory, photo_id) == 1
    read = await media_client.get(f"/v1/photos/{photo_id}", headers=tech.headers)
    assert read.status_code == 200
    assert read.json() == photo
    content = await media_client.get(f"/v1/photos/{photo_id}/content", headers=tech.headers)
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/jpeg"
    assert content.content == data
    assert await proof_count(factory, tenant, job) == 1


async def test_a_phone_sized_photo_passes_the_route_s_own_cap(factory: Factory, media_client: Client) -> None:
    _, tech, job = await technician_with_job(factory)
    data = jpeg(noise_image(), quality=92)
    assert 2_500_000 < len(data) < 4_000_000  # well over the app's 1 MiB cap for JSON bodies
    response = await upload(media_client, tech, job, data)
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == len(data)


async def test_the_type_is_sniffed_from_the_bytes_and_the_header_only_recorded(
    factory: Factory, media_client: Client
) -> None:
    _, tech, job = await technician_with_job(factory)
    # MPO: a JPEG with extra pictures in it (portrait-mode depth maps), as some phones write.
    depth_map: dict[str, Any] = {"save_all": True, "append_images": [scene(4, 320, 240)]}
    for image_format, content_type, options in (
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {}),
        ("MPO", "image/jpeg", depth_map),
    ):
        buffer = io.BytesIO()
        scene(3, 640, 480).save(buffer, image_format, **options)
        response = await upload(media_client, tech, job, buffer.getvalue(), content_type="image/jpeg")
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == content_type
        assert response.json()["declared_content_type"] == "image/jpeg"


# -- bad input: a clear answer, nothing kept ---------------------------------------------------------------------


async def test_bytes_that_are_not_an_image_are_refused_with_415(factory: Factory, media_client: Client) -> None:
    tenant, tech, job = await technician_with_job(factory)
    cases = {
        b"This is the customer's signature, honest.\n": "not a JPEG, PNG or WebP",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64): "HEIC",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;": "not a JPEG, PNG or WebP",
        b"": "empty",
    }
    for body, detail in cases.items():
        photo_id = uuid.uuid4()
        response = await upload(media_client, tech, job, body, photo_id=photo_id, content_type="image/jpeg")
        assert response.status_code == 415, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unsupported_media_type"
        assert detail in response.json()["detail"]
        assert await photo_rows(factory, photo_id) == 0
    assert await factory.count("SELECT count(*) FROM photos WHERE tenant_id = :t", t=tenant) == 0


async def test_a_truncated_jpeg_is_refused_with_422_and_the_whole_one_then_accepted(
    factory: Factory, media_client: Client
) -> None:
    _, tech, job = await technician_with_job(factory)
    data = site_photo(4)
    photo_id = uuid.uuid4()
    cut = await upload(media_client, tech, job, data[: len(data) * 2 // 3], photo_id=photo_id)
    assert cut.status_code == 422, cut.text
    assert cut.json()["code"] == "corrupt_image"
    assert "truncated" in cut.json()["detail"]
    assert await photo_rows(factory, photo_id) == 0
    # The phone retries with the whole file under the same id: nothing of the failed attempt is in the way.
    whole = await upload(media_client, tech, job, data, photo_id=photo_id)
    assert whole.status_code == 201, whole.text


async def _raw_put(client: Client, user: FieldUser, path: str, query: str, receive: Any, **headers: str) -> Any:
    """One request straight into the ASGI app, with a body the test hands out chunk by chunk: the test client
    would first join the whole body in memory, and this test is about never doing that."""
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"groundwork.test"),
            (b"authorization", user.headers["Authorization"].encode()),
            (b"content-type", b"image/jpeg"),
            *((name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("groundwork.test", 80),
        "state": {},
    }
    # The test client serves the app on an event loop of its own (a blocking portal); so must this request.
    with client.portal() as portal:
        portal.call(client.app, scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body)


async def test_a_200_mb_upload_is_refused_at_the_cap_without_reading_the_rest(
    factory: Factory, media_client: Client, settings: Settings, photo_dir: Path
) -> None:
    tenant, tech, job = await technician_with_job(factory)
    chunk = b"\xff" * (1 << 20)  # one MiB, handed out 200 times: the test never holds more than this
    total_chunks = 200
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= total_chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    photo_id = uuid.uuid4()
    path, query = f"/v1/photos/{photo_id}", f"job_id={job}"
    status, problem = await _raw_put(media_client, tech, path, query, receive)  # chunked: no Content-Length
    assert status == 413
    assert problem["code"] == "body_too_large"
    assert problem["max_bytes"] == settings.max_photo_bytes
    # Read up to the first byte past the cap, and not one chunk more.
    assert pulled == settings.max_photo_bytes // len(chunk) + 1
    assert await photo_rows(factory, photo_id) == 0
    assert not (photo_dir / str(tenant)).exists()

    pulled = 0
    status, problem = await _raw_put(
        media_client, tech, path, query, receive, content_length=str(total_chunks * len(chunk))
    )
    assert status == 413
    assert problem["code"] == "body_too_large"
    assert pulled == 0  # a declared length over the cap is refused before reading anything
    assert await photo_rows(factory, photo_id) == 0


async def test_an_upload_cut_off_by_a_lost_network_stores_nothing_and_a_retry_succeeds(
    factory: Factory, media_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    _, tech, job = await technician_with_job(factory)
    data = site_photo(16)
    half = len(data) // 2
    events = [
        {"type": "http.request", "body": data[:half], "more_body": True},
        {"type": "http.disconnect"},  # the lift doors closed
    ]

    async def receive() -> dict[str, Any]:
        return events.pop(0) if events else {"type": "http.disconnect"}

    photo_id = uuid.uuid4()
    status, problem = await _raw_put(media_client, tech, f"/v1/photos/{photo_id}", f"job_id={job}", receive)
    assert status == 422  # one status per code (mobile_contract.errors.STATUS)
    assert problem["code"] == "validation_failed"
    assert "unhandled error" not in caplog.text  # an everyday event, not a bug
    assert await photo_rows(factory, photo_id) == 0
    retried = await upload(media_client, tech, job, data, photo_id=photo_id)
    assert retried.status_code == 201, retried.text


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels: cheap to send, ruinous to decode."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(
    factory: Factory, media_client: Client
) -> None:
    tenant, tech, job = await technician_with_job(factory)
    # 100 MP (over our limit, where Pillow only warns) and 400 MP (where Pillow itself refuses).
    for side in (10_000, 20_000):
        response = await upload(media_client, tech, job, _png_claiming(side, side), content_type="image/png")
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "image_too_large"
        assert "too large" in response.json()["detail"]
    assert await factory.count("SELECT count(*) FROM photos WHERE tenant_id = :t", t=tenant) == 0


# -- EXIF against the job ----------------------------------------------------------------------------------------


async def test_exif_time_from_the_future_is_flagged_and_the_photo_kept(factory: Factory, media_client: Client) -> None:
    tenant, tech, job = await technician_with_job(factory)
    data = site_photo(5, taken=shanghai_now(timedelta(days=2)))
    response = await upload(media_client, tech, job, data)
    assert response.status_code == 201, response.text
    assert set(response.json()["flags"]) == {"exif_time_in_future", "exif_time_outside_window"}
    # A few minutes of clock drift is not the future.
    drift = await upload(media_client, tech, job, site_photo(6, taken=shanghai_now(timedelta(minutes=3))))
    assert drift.json()["flags"] == []
    assert await proof_count(factory, tenant, job) == 2  # flags are for the reviewer: they still count


async def test_exif_time_outside_the_job_window_is_flagged(factory: Factory, media_client: Client) -> None:
    _, tech, job = await technician_with_job(factory)
    yesterday = await upload(media_client, tech, job, site_photo(7, taken=shanghai_now(timedelta(days=-1))))
    assert yesterday.status_code == 201
    assert yesterday.json()["flags"] == ["exif_time_outside_window"]
    assert yesterday.json()["exif"]["taken_at"] is not None
    # Within the hour's margin before the window (it opened 2 h ago): fine.
    early = await upload(media_client, tech, job, site_photo(8, taken=shanghai_now(timedelta(hours=-2, minutes=-40))))
    assert early.json()["flags"] == []


async def test_exif_time_without_an_offset_is_judged_for_every_time_zone(
    factory: Factory, media_client: Client
) -> None:
    _, tech, job = await technician_with_job(factory)
    # Six hours before the window by Shanghai's clock, no offset written: some zone makes it fit. Not flagged.
    plausible = await upload(
        media_client, tech, job, site_photo(9, taken=shanghai_now(timedelta(hours=-8)), offset=None)
    )
    assert plausible.status_code == 201
    assert plausible.json()["flags"] == []
    assert plausible.json()["exif"]["taken_at"] is None  # a wall clock names no instant
    assert plausible.json()["exif"]["local_time"] is not None
    # Three days before: outside the window in every zone.
    stale = await upload(media_client, tech, job, site_photo(10, taken=shanghai_now(timedelta(days=-3)), offset=None))
    assert stale.json()["flags"] == ["exif_time_outside_window"]


async def test_gps_far_from_the_site_is_flagged_with_the_distance(factory: Factory, media_client: Client) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    small_fence = await make_job(factory, tenant, tech, radius_m=100)
    large_fence = await make_job(factory, tenant, tech, radius_m=500)
    across_town = site_photo(11, at=destination(*SITE, 90.0, 5_000.0))
    far = await upload(media_client, tech, small_fence, across_town)
    assert far.json()["flags"] == ["exif_location_far"]
    assert 4_990 < far.json()["exif"]["distance_m"] < 5_010
    assert abs(far.json()["exif"]["location"]["lat"] - SITE[0]) < 0.001
    # 350 m away: far from a 100 m fence (past 200 m), inside a 500 m one.
    at_350_m = destination(*SITE, 180.0, 350.0)
    outside = await upload(media_client, tech, small_fence, site_photo(12, at=at_350_m))
    assert outside.json()["flags"] == ["exif_location_far"]
    inside = await upload(media_client, tech, large_fence, site_photo(15, at=at_350_m))
    assert inside.json()["flags"] == []
    # The location comes back in the coordinate system the phone asks for.
    gcj = await upload(media_client, tech, large_fence, site_photo(13), crs="gcj02")
    assert abs(gcj.json()["exif"]["location"]["lon"] - SITE[1]) > 0.003  # GCJ-02 is offset ~500 m in Shanghai


async def test_a_photo_without_exif_is_flagged_as_saying_nothing(factory: Factory, media_client: Client) -> None:
    _, tech, job = await technician_with_job(factory)
    response = await upload(media_client, tech, job, jpeg(scene(14)))
    assert response.status_code == 201
    assert response.json()["flags"] == ["no_exif_time", "no_exif_location"]
    assert response.json()["exif"] == {
        "taken_at": None,
        "local_time": None,
        "utc_offset_min": None,
        "location": None,
        "distance_m": None,
    }


# -- reuse -------------------------------------------------------------------------------------------------------


async def test_a_photo_reused_from_an_earlier_job_is_flagged_even_re_encoded_and_resized(
    factory: Factory, media_client: Client
) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    other_tech = await factory.user(tenant, Role.TECHNICIAN)
    last_week = await make_job(factory, tenant, tech)
    today = await make_job(factory, tenant, other_tech)
    original = site_photo(21)
    first = await upload(media_client, tech, last_week, original)
    assert first.status_code == 201
    assert first.json()["flags"] == []

    copy = reencoded(original, quality=60, scale=0.5)
    assert len(copy) < len(original) / 3
    reused = await upload(media_client, other_tech, today, copy)
    assert reused.status_code == 201, reused.text  # kept: evidence
    assert "reused_photo" in reused.json()["flags"]
    assert reused.json()["reused_from"] == {"photo_id": first.json()["id"], "job_id": str(last_week)}
    assert reused.json()["width"] == 800
    assert await proof_count(factory, tenant, today) == 0
    assert await proof_count(factory, tenant, last_week) == 1

    # Sent again for the job it was first taken for, the picture is a duplicate there, not a reuse of the copy.
    back_home = await upload(media_client, tech, last_week, reencoded(original, quality=75, scale=0.7))
    assert "reused_photo" not in back_home.json()["flags"]
    assert back_home.json()["duplicate_of"] == {"photo_id": first.json()["id"], "job_id": str(last_week)}


async def test_the_same_picture_twice_on_one_job_is_not_reuse_and_counts_once(
    factory: Factory, media_client: Client
) -> None:
    tenant, tech, job = await technician_with_job(factory)
    data = site_photo(22)
    first = await upload(media_client, tech, job, data)
    second = await upload(media_client, tech, job, data)  # another id: the phone saved it twice
    assert second.status_code == 201
    assert "reused_photo" not in second.json()["flags"]
    assert second.json()["flags"] == ["duplicate_in_job"]
    assert second.json()["duplicate_of"] == {"photo_id": first.json()["id"], "job_id": str(job)}
    assert second.json()["reused_from"] is None
    assert await proof_count(factory, tenant, job) == 1
    async with factory.database.sessions() as session:
        listed = await photos_of_job(session, tenant, job)
    assert [str(p.id) for p in listed] == [first.json()["id"], second.json()["id"]]


async def test_another_shot_of_a_similar_scene_and_a_different_picture_are_not_reuse(
    factory: Factory, media_client: Client
) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    monday, tuesday, wednesday = [await make_job(factory, tenant, tech) for _ in range(3)]
    assert (await upload(media_client, tech, monday, site_photo(23))).status_code == 201
    # The same place shot again from a step aside (the camera moved ~5%): a new photo, not the old one.
    claims = exif(taken=shanghai_now(), offset="+08:00", at=SITE)
    step_aside = await upload(media_client, tech, tuesday, jpeg(scene(23, shift=(80, 60)), exif_block=claims))
    assert step_aside.json()["flags"] == []
    different = await upload(media_client, tech, wednesday, site_photo(24))
    assert different.json()["flags"] == []


async def test_reuse_is_looked_for_within_the_tenant_only(factory: Factory, media_client: Client) -> None:
    _, tech, job = await technician_with_job(factory)
    _, elsewhere_tech, elsewhere_job = await technician_with_job(factory)
    data = site_photo(25)
    assert (await upload(media_client, tech, job, data)).status_code == 201
    same_picture_other_company = await upload(media_client, elsewhere_tech, elsewhere_job, data)
    assert same_picture_other_company.status_code == 201
    assert same_picture_other_company.json()["flags"] == []


async def test_plain_pictures_are_not_matched_by_their_hash_but_exact_copies_are(
    factory: Factory, media_client: Client
) -> None:
    tenant = await factory.tenant()
    tech = await factory.user(tenant, Role.TECHNICIAN)
    one, two, three = [await make_job(factory, tenant, tech) for _ in range(3)]
    claims = exif(taken=shanghai_now(), offset="+08:00", at=SITE)
    grey_wall = jpeg(Image.new("RGB", (800, 600), (128, 128, 128)), exif_block=claims)
    darker_wall = jpeg(Image.new("RGB", (800, 600), (90, 90, 95)), exif_block=claims)
    first = await upload(media_client, tech, one, grey_wall)
    assert first.json()["flags"] == ["low_detail"]
    # Two different blank pictures have "similar" hashes made of noise: that is no evidence of reuse.
    other = await upload(media_client, tech, two, darker_wall)
    assert other.json()["flags"] == ["low_detail"]
    # The very same bytes on another job are.
    copy = await upload(media_client, tech, three, grey_wall)
    assert copy.json()["flags"] == ["low_detail", "reused_photo"]
    assert copy.json()["reused_from"]["photo_id"] == first.json()["id"]


# -- who may upload and see --------------------------------------------------------------------------------------


async def test_only_the_assignee_uploads_and_other_tenants_see_nothing(factory: Factory, media_client: Client) -> None:
    tenant, tech, job = await technician_with_job(factory)
    colleague = await factory.user(tenant, Role.TECHNICIAN)
    ops = await factory.user(tenant, Role.OPS)
    bd = await factory.user(tenant, Role.BD)
    _, stranger, stranger_job = await technician_with_job(factory)
    data = site_photo(31)
    assert (await upload(media_client, bd, job, data)).status_code == 404  # a BD sees no job at all

    not_mine = await upload(media_client, colleague, job, data)
    assert not_mine.status_code == 404
    assert not_mine.json()["code"] == "not_found"
    dispatcher = await upload(media_client, ops, job, data)
    assert dispatcher.status_code == 403
    assert dispatcher.json()["code"] == "forbidden"
    other_tenants_job = await upload(media_client, tech, stranger_job, data)
    assert other_tenants_job.status_code == 404
    missing_job = await upload(media_client, tech, uuid.uuid4(), data)
    assert missing_job.status_code == 404

    photo = (await upload(media_client, tech, job, data)).json()
    for outsider in (stranger, colleague, bd):
        assert (await media_client.get(f"/v1/photos/{photo['id']}", headers=outsider.headers)).status_code == 404
        assert (
            await media_client.get(f"/v1/photos/{photo['id']}/content", headers=outsider.headers)
        ).status_code == 404
        assert (await media_client.get(f"/v1/jobs/{job}/photos", headers=outsider.headers)).status_code == 404
    # Another tenant's upload under the same id is a new photo of its own: it learns nothing of this one.
    theirs = await upload(media_client, stranger, stranger_job, data, photo_id=UUID(photo["id"]))
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["job_id"] == str(stranger_job)
    assert (await media_client.get(f"/v1/photos/{photo['id']}", headers=tech.headers)).json() == photo


async def test_reviewers_in_scope_list_a_job_s_photos(factory: Factory, media_client: Client) -> None:
    tenant = await factory.tenant()
    team = await factory.team(tenant, "Huangpu crew")
    other_team = await factory.team(tenant, "Pudong crew")
    tech = await factory.user(tenant, Role.TECHNICIAN, team_id=team)
    supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=team)
    other_supervisor = await factory.user(tenant, Role.SUPERVISOR, team_id=other_team)
    ops = await factory.user(tenant, Role.OPS)
    job = await make_job(factory, tenant, tech)
    uploaded = [(await upload(media_client, tech, job, site_photo(40 + i))).json() for i in range(3)]

    for reviewer in (tech, supervisor, ops):
        listed = await media_client.get(f"/v1/jobs/{job}/photos", headers=reviewer.headers)
        assert listed.status_code == 200, listed.text
        assert [p["id"] for p in listed.json()["items"]] == [p["id"] for p in uploaded]
        one = await media_client.get(f"/v1/photos/{uploaded[0]['id']}", headers=reviewer.headers)
        assert one.status_code == 200
    assert (await media_client.get(f"/v1/jobs/{job}/photos", headers=other_supervisor.headers)).status_code == 404

    first_page = await media_client.get(f"/v1/jobs/{job}/photos", params={"limit": 2}, headers=ops.headers)
    assert [p["id"] for p in first_page.json()["items"]] == [p["id"] for p in uploaded[:2]]
    rest = await media_client.get(
        f"/v1/jobs/{job}/photos", params={"limit": 2, "cursor": first_page.json()["next_cursor"]}, headers=ops.headers
    )
    assert [p["id"] for p in rest.json()["items"]] == [uploaded[2]["id"]]
    assert rest.json()["next_cursor"] is None
