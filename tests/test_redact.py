"""Secrets are masked in every text that leaves the process."""

from streamctl.redact import mask_url, redact, register_secret


def test_mask_url_keeps_host_and_app_and_masks_key():
    assert mask_url("rtmps://live-api-s.facebook.com:443/rtmp/FB-123?s_bl=1&a=Abw") == \
        "rtmps://live-api-s.facebook.com:443/rtmp/****?****"
    assert mask_url("rtmp://a.rtmp.youtube.com/live2/abcd-efgh") == "rtmp://a.rtmp.youtube.com/live2/****"
    assert mask_url("rtmp://user:pw@host/app") == "rtmp://****@host/app"
    assert mask_url("srt://host:9000?passphrase=secret123&latency=200") == "srt://host:9000?****"


def test_registered_secret_is_masked_anywhere():
    register_secret("k58k-um6h-rvq6-xrxf")
    line = "[tls] error writing to rtmp://a.rtmp.youtube.com/live2/k58k-um6h-rvq6-xrxf: Broken pipe"
    assert "k58k" not in redact(line)


def test_secret_looking_query_parameters_are_masked():
    assert redact("GET /v21.0/123/comments?access_token=EAAB123&limit=5") == \
        "GET /v21.0/123/comments?access_token=****&limit=5"
    assert redact("metadata=1") == "metadata=1"
