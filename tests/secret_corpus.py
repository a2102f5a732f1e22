"""A corpus of realistic secrets: every format the issue-15 attack planted, each a fake in the
real format that says FAKE or EXAMPLE wherever the format allows. `CORPUS[name] = (text as
planted, needle)`: the needle is the part that must never come out of aksdiag."""

from __future__ import annotations

JWT_RS = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJGQUtFLUVYQU1QTEUiLCJ0aWQiOiJGQUtFIn0"
    ".FAKEsignatureEXAMPLEabcdefghijklmnop"
)
JWT_SHORT = "eyJhbGciOiJIUzI1NiJ9.eyJGQUtFIjoxfQ.FAKEsig"
JWT_NONE = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJGQUtFLUVYQU1QTEUifQ."
STORAGE_KEY = (
    "FAKEstorageKEYexample0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0=="
)
AAD_SECRET = "FAK8Q~EXAMPLEfakeSecretValue0123456789ab"
DEVOPS_PAT = "fakeexampleazdopat2345672345672345672345672345672345"  # 52 x [a-z2-7]
assert len(DEVOPS_PAT) == 52
DD_HEX = "fa4ec0de0000e0a3b1c2d3e4f5a6b7c8"
PEM_RSA = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEFAKEEXAMPLErsaKEYbodyABCDEFGHIJKLMNOPQRSTUVWXYZ0123\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_OPENSSH = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1FAKEEXAMPLEopensshKEYbody0123456789\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
PEM_EC = (
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKEEXAMPLEecKEYbody0123456789abcdefghij\n"
    "-----END EC PRIVATE KEY-----"
)
PEM_PKCS8 = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANFAKEEXAMPLEpkcs8KEYbody0123456789abcdef\n"
    "-----END PRIVATE KEY-----"
)
DOCKER_AUTH = "RkFLRTpFWEFNUExFLWRvY2tlci1wYXNzd29yZA=="  # FAKE:EXAMPLE-docker-password

CORPUS: dict[str, tuple[str, str]] = {
    # Slack
    "slack bot token": ("xoxb-1234567890-FAKE1234567-EXAMPLEbotTokenFAKE0000",) * 2,
    "slack user token": ("xoxp-1234567890-FAKE1234567-EXAMPLEuserTokenFAKE000",) * 2,
    "slack app token": ("xapp-1-AFAKE00001-1234567890-EXAMPLEappTokenFAKE0000000000",) * 2,
    "slack webhook": (
        "https://hooks.slack.com/services/T0FAKE000/B0FAKE000/FAKEwebhookEXAMPLE00",
        "FAKEwebhookEXAMPLE00",
    ),
    "slack response url": (
        "https://hooks.slack.com/commands/T0FAKE000/1234567890/FAKEresponseEXAMPLE0000",
        "FAKEresponseEXAMPLE",
    ),
    # source forges and registries
    "github pat classic": ("ghp_FAKEexample0123456789abcdefghijklmnop",) * 2,
    "github oauth": ("gho_FAKEexample0123456789abcdefghijklmnop",) * 2,
    "github fine-grained pat": (
        "github_pat_11FAKEEXAMPLE0123456789_abcdefghijklmnopqrstuvwxyzFAKE",
    )
    * 2,
    "gitlab pat": ("glpat-FAKEexample01234567890",) * 2,
    "npm token": ("npm_FAKEexample0123456789abcdefghijklmn",) * 2,
    "npmrc auth token": (
        "//registry.npmjs.org/:_authToken=FAKE-npmrc-EXAMPLE-token-0001",
        "FAKE-npmrc-EXAMPLE",
    ),
    "pypi token": ("pypi-AgEIcHlwaS5vcmcFAKEEXAMPLE0123456789abcdefghijklmnop",) * 2,
    "docker hub pat": ("dckr_pat_FAKEexampleEXAMPLE01234567",) * 2,
    "docker config auth": (
        f'{{"auths":{{"fake.azurecr.io":{{"auth":"{DOCKER_AUTH}"}}}}}}',
        DOCKER_AUTH,
    ),
    # SaaS API keys
    "stripe live key": ("sk_live_FAKEexample0123456789abcdef",) * 2,
    "stripe restricted key": ("rk_live_FAKEexample0123456789abcdef",) * 2,
    "sendgrid key": ("SG.FAKEexample012345678.FAKEexampleEXAMPLEabcdefghijklmnop0123456",) * 2,
    "openai project key": ("sk-proj-FAKEexample0123456789abcdefghijklmnopqrstuvwxyz",) * 2,
    "openai legacy key": ("sk-FAKEexampleEXAMPLE0123456789abcdefghijklmn",) * 2,
    "anthropic key": ("sk-ant-api03-FAKEexample0123456789abcdefghijklmnop",) * 2,
    "vault service token": ("hvs.FAKEexampleEXAMPLE0123456789abcdef",) * 2,
    "vault batch token": ("hvb.FAKEexampleEXAMPLE0123456789abcdef",) * 2,
    "aws access key": ("AKIAFAKEEXAMPLE00001",) * 2,
    "aws secret key": (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKEEXAMPLEKEY",
        "bPxRfiCYFAKEEXAMPLEKEY",
    ),
    "google api key": ("AIzaFAKEexample0123456789abcdefghijklmno",) * 2,
    "twilio api key": ("SKfa4e0000000000000000000000000001",) * 2,
    "mailgun key": ("key-fakeexample0123456789abcdefghijk",) * 2,
    "shopify token": ("shpat_fa4e0000000000000000000000000001",) * 2,
    "telegram bot token": (
        "123456789:AAFAKEexampleEXAMPLE0123456789abcdefg",
        "AAFAKEexampleEXAMPLE",
    ),
    "datadog api key": (f"DD_API_KEY={DD_HEX}", DD_HEX),
    # Azure
    "aad client secret bare": (AAD_SECRET,) * 2,
    "aad client secret env": (f"AZURE_CLIENT_SECRET={AAD_SECRET[:-1]}c", AAD_SECRET[:-1] + "c"),
    "aad client secret json": (
        f'{{"clientId": "fake", "clientSecret": "FAKEsecretEXAMPLE-{AAD_SECRET[:3]}"}}',
        "FAKEsecretEXAMPLE-",
    ),
    "aad jwt": (JWT_RS, JWT_RS.split(".")[1]),
    "short jwt": (JWT_SHORT, "eyJGQUtFIjoxfQ"),
    "alg none jwt": (JWT_NONE, "eyJzdWIiOiJGQUtFLUVYQU1QTEUifQ"),
    "access token in url": (f"GET /healthz?access_token={JWT_SHORT}x", "eyJGQUtFIjoxfQ"),
    "oauth code in url": (
        "https://app.example.com/callback?code=FAKEauthCODEexample0001&state=x",
        "FAKEauthCODEexample",
    ),
    "function key in url": (
        "https://fake.azurewebsites.net/api/hook?code=FAKEfunctionKEYexample==",
        "FAKEfunctionKEYexample",
    ),
    "apim subscription key": (
        "https://api.example.com/v1?subscription-key=fa4e0000example0001",
        "fa4e0000example0001",
    ),
    "maps key in url": (
        "https://atlas.microsoft.com/route?key=FAKEmapsKEYexample0002",
        "FAKEmapsKEYexample",
    ),
    "sas url": (
        "https://fakeexample.blob.core.windows.net/logs?sv=2022-11-02&sp=rl&se=2030-01-01"
        "&sig=FAKEsasEXAMPLE%2Fabc123def456%3D",
        "FAKEsasEXAMPLE",
    ),
    "storage connection string": (
        "DefaultEndpointsProtocol=https;AccountName=fakeexample;"
        f"AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net",
        STORAGE_KEY[:40],
    ),
    "storage key bare then dot": (f"rotated to {STORAGE_KEY}.", STORAGE_KEY[:40]),
    "service bus connection string": (
        "Endpoint=sb://fake.servicebus.windows.net/;SharedAccessKeyName="
        "RootManageSharedAccessKey;SharedAccessKey=FAKEsbKEYexample0123=",
        "FAKEsbKEYexample",
    ),
    "sql connection string": (
        "Server=tcp:fake.database.windows.net,1433;User ID=app;"
        "Password=FAKE-sql-EXAMPLE-pass;Encrypt=True",
        "FAKE-sql-EXAMPLE",
    ),
    "log analytics workspace key": (
        '"workspaceKey": "FAKEworkspaceKEYexample0123456789abcdef=="',
        "FAKEworkspaceKEYexample",
    ),
    "devops pat as url user": (f"https://{DEVOPS_PAT}@dev.azure.com/fake/_git/repo", DEVOPS_PAT),
    "devops pat bare": (f"git clone with {DEVOPS_PAT} failed", DEVOPS_PAT),
    # passwords in text and URLs
    "quoted json password": (
        '{"username": "app", "password": "FAKE pass EXAMPLE"}',
        "FAKE pass EXAMPLE",
    ),
    "yaml password": ("password: FAKEyamlPASSexample", "FAKEyamlPASSexample"),
    "env password with underscore": ("DB_PASSWORD=FAKEdbPASSexample", "FAKEdbPASSexample"),
    "cli password flag": ("--password FAKEflagPASSexample --port 5432", "FAKEflagPASSexample"),
    "go dsn": ("app:FAKEgoDSNpass@tcp(mysql.fake:3306)/orders?parseTime=true", "FAKEgoDSNpass"),
    "postgres url": ("postgres://app:FAKE-pg-EXAMPLE@db.shop.svc:5432/shop", "FAKE-pg-EXAMPLE"),
    "redis url": (
        "redis://:FAKEredisPasswordEXAMPLE@cache.example.internal:6380/0",
        "FAKEredisPasswordEXAMPLE",
    ),
    "mongodb srv url": (
        "mongodb+srv://app:FAKEmongoEXAMPLE@cluster0.fake.mongodb.net/db",
        "FAKEmongoEXAMPLE",
    ),
    "http proxy with credentials": (
        "http://proxyuser:FAKEproxyEXAMPLE@proxy.fake:3128",
        "FAKEproxyEXAMPLE",
    ),
    "bearer header": ("Authorization: Bearer FAKEbearerEXAMPLE0123456789", "FAKEbearerEXAMPLE"),
    "basic header": ("Authorization: Basic RkFLRTpFWEFNUExFYmFzaWM=", "RkFLRTpFWEFNUExFYmFzaWM"),
    # keys
    "pem rsa private key": (PEM_RSA, "MIIEFAKEEXAMPLErsaKEYbody"),
    "pem openssh private key": (PEM_OPENSSH, "FAKEEXAMPLEopensshKEYbody"),
    "pem ec private key": (PEM_EC, "FAKEEXAMPLEecKEYbody"),
    "pem pkcs8 private key": (PEM_PKCS8, "FAKEEXAMPLEpkcs8KEYbody"),
    "unknown high-entropy key": (
        "api answered 401 for FAKEk3yEXAMPLEq8Zr2Lw9Tn4Xv7Bm1Cd5Gh0J",
        "FAKEk3yEXAMPLEq8Zr2Lw9Tn4Xv7Bm1Cd5Gh0J",
    ),
}
NEEDLES = [needle for _, needle in CORPUS.values()]


def leaks(text: str) -> list[str]:
    """The needles found in `text` (an empty list when nothing leaked)."""
    return [n for n in NEEDLES if n in text]
