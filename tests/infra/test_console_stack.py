"""The console's deployment: private bucket behind CloudFront (OAC, HTTPS only, strict CSP), its
files and config.json, and both APIs answering CORS for the distribution's origin only."""

from __future__ import annotations

import json
from typing import Any

from lisa_stacks.application import Synthesized


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def _only(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = _resources(template, kind)
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]["Properties"]


def test_the_console_bucket_is_private_and_read_only_by_cloudfront(synthesized: Synthesized) -> None:
    console = synthesized.template(synthesized.names.console)
    bucket = _only(console, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    policy = json.dumps(_only(console, "AWS::S3::BucketPolicy"))
    assert "cloudfront.amazonaws.com" in policy and "AWS:SourceArn" in policy
    assert '"aws:SecureTransport": "false"' in policy
    assert (
        _only(console, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]["SigningBehavior"]
        == "always"
    )


def test_cloudfront_serves_https_only_with_a_strict_content_security_policy(synthesized: Synthesized) -> None:
    console = synthesized.template(synthesized.names.console)
    distribution = _only(console, "AWS::CloudFront::Distribution")["DistributionConfig"]
    behaviors = [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]
    assert {b["ViewerProtocolPolicy"] for b in behaviors} == {"https-only"}
    assert distribution["DefaultRootObject"] == "index.html"
    headers = _only(console, "AWS::CloudFront::ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "script-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert "execute-api" in csp and synthesized.config.oidc.issuer.split("/")[2] in csp
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert security["FrameOptions"]["FrameOption"] == "DENY"


def test_the_files_and_config_json_are_deployed(synthesized: Synthesized) -> None:
    console = synthesized.template(synthesized.names.console)
    files = _only(console, "Custom::CDKBucketDeployment")
    assert files["Prune"] is True and files.get("Exclude") == ["config.json"]
    serve = synthesized.template(synthesized.names.serve)
    config_file = _only(serve, "Custom::CDKBucketDeployment")
    assert config_file["Prune"] is False
    assert "console" in json.dumps(config_file["DestinationBucketName"])


def _distribution_import(value: Any) -> bool:
    return "Distribution" in json.dumps(value)


def test_both_apis_answer_cors_for_the_console_origin_only(synthesized: Synthesized) -> None:
    core = synthesized.template(synthesized.names.core)
    admin = [
        f["Properties"]["Environment"]["Variables"]
        for f in _resources(core, "AWS::Lambda::Function")
        if "CORS_ALLOWED_ORIGINS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(admin) == 1 and _distribution_import(admin[0]["CORS_ALLOWED_ORIGINS"])
    preflights = [
        m["Properties"]
        for m in _resources(core, "AWS::ApiGateway::Method")
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert preflights and all(p["AuthorizationType"] == "NONE" for p in preflights)
    allowed = {
        json.dumps(
            p["Integration"]["IntegrationResponses"][0]["ResponseParameters"][
                "method.response.header.Access-Control-Allow-Origin"
            ]
        )
        for p in preflights
    }
    assert len(allowed) == 1 and _distribution_import(sorted(allowed))
    for response in _resources(core, "AWS::ApiGateway::GatewayResponse"):
        assert _distribution_import(
            response["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        )
    serve = synthesized.template(synthesized.names.serve)
    container = _only(serve, "AWS::ECS::TaskDefinition")["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert _distribution_import(env["LISA_SERVE_CORS_ORIGINS"])
