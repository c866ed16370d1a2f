"""The unmodified Alibaba SDKs as the suites call them: the Tea SDK (ACS3 signatures) and
the legacy core SDK (V1 signatures), both answering dicts and raising one AlibabaError."""
import importlib
import json
import re

import pytest
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_vpc20160428 import models as tea_models
from alibabacloud_vpc20160428.client import Client as TeaClient
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient

REGION = "cn-hangzhou"


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class AlibabaError(Exception):
    """An error answer, whichever SDK received it."""

    def __init__(self, code, status, message):
        super().__init__(f"{code} ({status}): {message}")
        self.code, self.status, self.message = code, status, message


class Tea:
    """Calls actions through the Tea SDK with wire-named parameters; returns the body map."""

    def __init__(self, endpoint, key, region=REGION, ca=None):
        """`ca`: the CA file of an HTTPS endpoint (plain HTTP without)."""
        self.region = region
        self.client = TeaClient(openapi_models.Config(
            access_key_id=key.key_id, access_key_secret=key.secret, endpoint=endpoint,
            protocol="https" if ca else "http", ca=ca, region_id=region))

    def __call__(self, action, region=True, **params):
        if region is True:
            params.setdefault("RegionId", self.region)
        elif region:
            params["RegionId"] = region
        request = getattr(tea_models, f"{action}Request")().from_map(params)
        try:
            return getattr(self.client, snake(action))(request).body.to_map()
        except Exception as e:  # the Tea SDK raises its own exception types
            data = getattr(e, "data", None) or {}
            if not getattr(e, "code", None):
                raise
            raise AlibabaError(e.code, data.get("statusCode"), data.get("Message")) from e


class Legacy:
    """Calls actions through aliyun-python-sdk-vpc request classes and their setters."""

    def __init__(self, endpoint, key, region=REGION):
        self.endpoint = endpoint
        self.client = AcsClient(key.key_id, key.secret, region)

    def __call__(self, action, **params):
        module = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{action}Request")
        request = getattr(module, f"{action}Request")()
        for key, value in params.items():
            names = [f"set_{key}s", f"set_{key}"] if isinstance(value, list) else [f"set_{key}"]
            setter = next(getattr(request, n) for n in names if hasattr(request, n))
            setter(value)
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        try:
            return json.loads(self.client.do_action_with_exception(request))
        except ServerException as e:
            raise AlibabaError(e.get_error_code(), e.get_http_status(), e.get_error_msg()) from e


def error_of(call, *args, **kwargs):
    """Runs a call that must fail; returns (code, HTTP status)."""
    with pytest.raises(AlibabaError) as info:
        call(*args, **kwargs)
    return info.value.code, info.value.status
