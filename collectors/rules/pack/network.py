"""Built-in rules: network and DNS — credential endpoints, mining pools, Tor, DNS
tunnelling, and destinations new to a Lambda function's baseline."""

from __future__ import annotations

import zlib
from typing import Any

from collectors.model import DnsActivity, NetworkActivity, OcsfEvent, Process, ProcessActivity
from collectors.rules.engine import CRITICAL, HIGH, MEDIUM, Hit, RuleContext, rule
from collectors.rules.pack._net import (
    ECS_CREDENTIAL_IPS,
    EKS_CREDENTIAL_IPS,
    actor_process,
    base_name,
    canonical_ip,
    credential_endpoint,
    hosts_in_command,
    is_link_local,
    is_loopback,
    is_private,
    looks_encoded,
    normalise_host,
    program_names,
    registrable_domain,
    shannon_entropy,
    suffix_match,
    suspicious_actor,
)

_ACTIVITY_SOURCES = ["layer", "falco", "osquery", "tetragon"]
_INBOUND = 1


def _is_lambda(ctx: RuleContext) -> bool:
    if ctx.workload is not None:
        return ctx.workload.type == "lambda"
    return ctx.source == "layer"  # the layer only runs in Lambda (function not named)


def _outbound(event: NetworkActivity) -> bool:
    """Connections and traffic the workload initiates (not listens, not inbound)."""
    if event.activity_id == NetworkActivity.LISTEN:
        return False
    ci = event.connection_info
    return not (ci is not None and ci.direction_id == _INBOUND)


def _destination(event: NetworkActivity) -> tuple[str | None, str | None, int | None]:
    """(canonical ip, host name, port) of an outbound event's destination."""
    dst = event.dst_endpoint
    if dst is None:
        return None, None, None
    return canonical_ip(dst.ip), normalise_host(dst.hostname), dst.port


def _command_hosts(proc: Process | None) -> list[str]:
    if proc is None or not proc.cmd_line:
        return []
    return list(hosts_in_command(proc.cmd_line))


def _program(proc: Process | None) -> str | None:
    if proc is None:
        return None
    return proc.name or (base_name(proc.file.path) if proc.file else None) or None


# -- 1. credential endpoints -------------------------------------------------------------------
@rule(
    id="network.credential-endpoint",
    title="Cloud credential endpoint contacted by a workload",
    severity=HIGH,
    techniques=["T1552.005"],
    sources=_ACTIVITY_SOURCES,
    classes=[NetworkActivity, DnsActivity, ProcessActivity],
)
def credential_endpoint_contact(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """A workload reaching for the instance or container credential endpoints: EC2 IMDS
    (``169.254.169.254``, ``fd00:ec2::254``, ``instance-data``), ECS container credentials
    (``169.254.170.2``), EKS Pod Identity (``169.254.170.23``, ``fd00:ec2::23``), in any
    spelling of the address (decimal, hex, octal, v4-mapped or NAT64 IPv6, wildcard DNS such
    as ``169.254.169.254.nip.io``); by connection, DNS look-up, or a program launched with
    the endpoint on its command line (``curl http://169.254.169.254/...``).

    From a Lambda function this is always an attack (Lambda has no IMDS; its credentials are
    in the environment): critical, whatever the sensor's verdict. On EC2, ECS and EKS the
    SDKs use these endpoints legitimately, so it fires only when the actor is a shell, a
    network tool (curl, wget, nc, socat...) or an interpreter given inline code
    (``python -c``), or when a container asks another orchestrator's endpoint (an ECS task
    asking the EKS Pod Identity agent, a pod asking ECS's). Not covered: an application's
    own SDK calls to IMDS from pods (block them with an IMDS hop limit of 1 instead), and
    events whose source names no process. One finding per endpoint."""
    lam = _is_lambda(ctx)
    found: tuple[str, str] | None = None
    actor: Process | None = None
    port: int | None = None
    if isinstance(event, NetworkActivity):
        if not _outbound(event):
            return None
        ip, host, port = _destination(event)
        found = credential_endpoint(ip) if ip else None
        if found is None and host:
            found = credential_endpoint(host)
        actor = event.actor.process if event.actor else None
    elif isinstance(event, DnsActivity):
        if event.query is None:
            return None
        found = credential_endpoint(event.query.hostname)
        actor = event.actor.process if event.actor else None
    elif isinstance(event, ProcessActivity):
        if event.activity_id != ProcessActivity.LAUNCH:
            return None
        actor = event.process
        if not lam and suspicious_actor(actor) is None:
            return None
        for h in _command_hosts(actor):
            found = credential_endpoint(h)
            if found is not None:
                break
    if found is None:
        return None
    endpoint, what = found
    why: str | None
    if lam:
        why = "Lambda functions have no instance metadata; their credentials are in the environment"
    else:
        why = suspicious_actor(actor)
        kind = ctx.workload.type if ctx.workload else None
        if why is not None:
            why = f"requested by a {why} ({_program(actor)}), not an SDK"
        elif (kind == "k8s-pod" and endpoint in ECS_CREDENTIAL_IPS) or (
            kind == "ecs-task" and endpoint in EKS_CREDENTIAL_IPS
        ):
            why = f"a {kind} asking another orchestrator's credential endpoint"
        else:
            return None
    evidence: dict[str, Any] = {"endpoint": endpoint, "service": what, "reason": why}
    if port is not None:
        evidence["port"] = port
    prog = _program(actor)
    if prog and not (lam and isinstance(event, NetworkActivity | DnsActivity)):
        evidence["process"] = prog
    return Hit(
        key=endpoint,
        title=(
            f"Lambda function contacted {what}"
            if lam
            else f"{what} contacted by {prog or 'a process'}"
        ),
        severity=CRITICAL if lam else HIGH,
        evidence=evidence,
    )


# -- 2. mining pools ---------------------------------------------------------------------------
MINING_POOL_DOMAINS = frozenset(
    {
        "nanopool.org",
        "supportxmr.com",
        "minexmr.com",
        "2miners.com",
        "f2pool.com",
        "ethermine.org",
        "moneroocean.stream",
        "hashvault.pro",
        "herominers.com",
        "unmineable.com",
        "nicehash.com",
        "c3pool.com",
        "c3pool.org",
        "xmrpool.eu",
        "xmrpool.net",
        "minergate.com",
        "viabtc.com",
        "viabtc.top",
        "antpool.com",
        "slushpool.com",
        "poolin.com",
        "miningpoolhub.com",
        "flypool.org",
        "ethpool.org",
        "sparkpool.com",
        "dwarfpool.com",
        "moneropool.com",
        "monerohash.com",
        "xmrfast.com",
        "p2pool.io",
        "zergpool.com",
        "zpool.ca",
        "prohashing.com",
        "mining-dutch.nl",
        "woolypooly.com",
        "k1pool.com",
        "rplant.xyz",
        "kryptex.network",
        "emcd.io",
        "hiveon.net",
        "hiveon.com",
        "miningocean.org",
        "xmr.pt",
        "bohemianpool.com",
        "fairhash.org",
        "mixpools.org",
        "xmrig.com",
        "comining.io",
        "ezil.me",
        "solopool.org",
        "binance-pool.com",
        "luxor.tech",
        "dxpool.com",
        "acepool.top",
    }
)
STRATUM_PORTS = frozenset(
    {
        3333,
        3334,
        3335,
        3336,
        3337,
        3357,
        4444,
        5555,
        5556,
        5588,
        6666,
        7777,
        8888,
        9999,
        10001,
        10128,
        10343,
        13333,
        14433,
        14444,
        15555,
        17777,
        20535,
        45560,
        45700,
    }
)
MINER_PROGRAMS = frozenset(
    {
        "xmrig",
        "xmrig-notls",
        "xmr-stak",
        "xmr-stak-cpu",
        "xmr-stak-rx",
        "cpuminer",
        "cpuminer-multi",
        "cpuminer-opt",
        "minerd",
        "ccminer",
        "cgminer",
        "bfgminer",
        "ethminer",
        "t-rex",
        "lolminer",
        "nbminer",
        "phoenixminer",
        "gminer",
        "nanominer",
        "srbminer",
        "srbminer-multi",
        "teamredminer",
        "wildrig",
        "wildrig-multi",
        "kdevtmpfsi",
        "nheqminer",
        "bminer",
        "xmrminer",
        "rigel",
        "bzminer",
        "onezerominer",
    }
)
_MINER_ARGS = (
    "stratum+tcp://",
    "stratum+ssl://",
    "stratum+tls://",
    "stratum2+tcp://",
    "--donate-level",
    "--cpu-max-threads-hint",
    "--randomx",
    "cryptonight",
)
_POOL_WORDS = frozenset({"pool", "pools", "stratum", "mining", "miner", "mine", "xmr", "monero"})
_COIN_WORDS = frozenset({"xmr", "monero", "rx", "randomx"})


def _pool_hint(host: str) -> bool:
    """A host name that says it is a mining pool (``xmr-pool.example``, ``stratum.x.net``)."""
    tokens = set(host.replace("-", ".").split("."))
    return bool(tokens & _POOL_WORDS) or any(t.startswith(("xmr", "stratum")) for t in tokens)


def _miner_actor(proc: Process | None) -> str | None:
    if proc is None:
        return None
    names = program_names(proc)
    hit = names & MINER_PROGRAMS
    if hit:
        return sorted(hit)[0]
    cmd = (proc.cmd_line or "").lower()
    for marker in _MINER_ARGS:
        if marker in cmd:
            return marker
    return None


def _pool_domain(host: str | None) -> str | None:
    if not host:
        return None
    found = suffix_match(host, MINING_POOL_DOMAINS)
    if found:
        return found
    tokens = set(host.replace("-", ".").split("."))
    if "pool" in tokens and tokens & _COIN_WORDS:
        return host
    return None


@rule(
    id="network.mining-pool",
    title="Workload talking to a cryptocurrency mining pool",
    severity=HIGH,
    techniques=["T1496.001"],
    sources=_ACTIVITY_SOURCES,
    classes=[NetworkActivity, DnsActivity],
)
def mining_pool(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Connections to, and DNS look-ups of, cryptocurrency mining pools: known pool
    domains (``*.supportxmr.com``, ``*.nanopool.org``, ``xmrpool.eu``... matched on label
    boundaries) and names that say so (``xmr-pool.example``); connections made by a mining
    program (xmrig, cpuminer... or a ``stratum+tcp://`` command line) to any address; and
    stratum ports (3333, 4444, 14444, 45700...) when the destination's name looks like a
    pool. A bare IP on a stratum port with no miner behind it is not enough (those ports
    are common for ordinary services). Miner *processes* without a connection are the
    process rules' business. One finding per pool (domain, else address and port)."""
    if isinstance(event, DnsActivity):
        host = normalise_host(event.query.hostname) if event.query else None
        pool = _pool_domain(host)
        if pool is None:
            return None
        return Hit(key=pool, evidence={"query": host, "pool": pool})
    if not isinstance(event, NetworkActivity) or not _outbound(event):
        return None
    ip, host, port = _destination(event)
    if ip is None and host is None:
        return None
    if ip is not None and is_loopback(ip) and host is None:
        return None  # a local proxy is judged by what it connects to
    proc = actor_process(event)
    evidence: dict[str, Any] = {"ip": ip, "port": port}
    if host:
        evidence["host"] = host
    pool = _pool_domain(host)
    miner = _miner_actor(proc)
    if pool is None and miner is None:
        if port in STRATUM_PORTS and host and _pool_hint(host):
            pool = host
        else:
            return None
    if miner:
        evidence["miner"] = miner
    if proc is not None and _program(proc):
        evidence["process"] = _program(proc)
    target = pool or host or (f"[{ip}]:{port}" if ip and ":" in ip else f"{ip}:{port}")
    return Hit(key=target, evidence=evidence)


# -- 3. Tor ------------------------------------------------------------------------------------
TOR_PROGRAMS = frozenset(
    {
        "tor",
        "tor.real",
        "torsocks",
        "torify",
        "obfs4proxy",
        "lyrebird",
        "snowflake-client",
        "meek-client",
        "onionshare",
        "onionshare-cli",
    }
)
TOR_LOCAL_PORTS = frozenset({9050, 9051, 9150, 9151})  # SOCKS and control ports
TOR_RELAY_PORTS = frozenset({9001, 9030})  # default ORPort and DirPort


def _onion(host: str | None) -> str | None:
    if host and (host.endswith(".onion") or host == "onion"):
        return host
    return None


@rule(
    id="network.tor",
    title="Tor used by a workload",
    severity=HIGH,
    techniques=["T1090.003"],
    sources=_ACTIVITY_SOURCES,
    classes=[NetworkActivity, DnsActivity, ProcessActivity],
)
def tor(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """Tor in a workload: look-ups of ``.onion`` names, programs of the Tor family started
    (tor, torsocks, obfs4proxy...) or making connections, connections to Tor's SOCKS and
    control ports (9050, 9051, 9150, 9151, on any address: a local Tor client), and
    connections to the relay ports 9001/9030 on internet addresses (medium: other services
    use them too; private addresses and loopback — the Lambda Runtime API is
    127.0.0.1:9001 — are ignored). Tor relays on port 443 cannot be told from the web by
    port and are not covered. One finding per onion name, Tor program or port."""
    if isinstance(event, DnsActivity):
        onion = _onion(normalise_host(event.query.hostname) if event.query else None)
        return Hit(key=onion, evidence={"query": onion}) if onion else None
    if isinstance(event, ProcessActivity):
        if event.activity_id != ProcessActivity.LAUNCH:
            return None
        names = program_names(event.process)
        un = event.unmapped or {}
        programs = un.get("programs")
        if isinstance(programs, list):
            names |= {base_name(p).lower() for p in programs if isinstance(p, str)}
        hit = names & TOR_PROGRAMS
        if hit:
            prog = sorted(hit)[0]
            return Hit(key=f"process:{prog}", evidence={"process": prog})
        for h in _command_hosts(event.process):
            onion = _onion(normalise_host(h))
            if onion:
                return Hit(key=onion, evidence={"onion": onion, "process": _program(event.process)})
        return None
    if not isinstance(event, NetworkActivity) or not _outbound(event):
        return None
    ip, host, port = _destination(event)
    onion = _onion(host)
    if onion:
        return Hit(key=onion, evidence={"host": onion, "port": port})
    proc = actor_process(event)
    hit = program_names(proc) & TOR_PROGRAMS
    if hit:
        prog = sorted(hit)[0]
        return Hit(key=f"process:{prog}", evidence={"process": prog, "ip": ip, "port": port})
    if port in TOR_LOCAL_PORTS and ip is not None:
        return Hit(key=f"port:{port}", evidence={"ip": ip, "port": port, "process": _program(proc)})
    if port in TOR_RELAY_PORTS and ip is not None and not is_private(ip):
        return Hit(
            key=f"port:{port}",
            title="Possible Tor relay connection from a workload",
            severity=MEDIUM,
            evidence={"ip": ip, "port": port, "process": _program(proc)},
        )
    return None


# -- 4. DNS tunnelling -------------------------------------------------------------------------
# Names whose look-ups are random-looking by design: AWS, CDNs, reputation look-ups.
DNS_TUNNEL_IGNORED = frozenset(
    {
        "amazonaws.com",
        "amazonaws.com.cn",
        "aws",
        "amazon.com",
        "amazontrust.com",
        "a2z.com",
        "cloudfront.net",
        "awsglobalaccelerator.com",
        "awsdns-cn.net",
        "in-addr.arpa",
        "ip6.arpa",
        "akamaiedge.net",
        "akamai.net",
        "akadns.net",
        "edgekey.net",
        "edgesuite.net",
        "googleapis.com",
        "googlevideo.com",
        "gvt1.com",
        "sophosxl.net",
        "cymru.com",
        "spamhaus.org",
        "spamhaus.net",
        "sorbs.net",
        "surbl.org",
        "uribl.com",
        "mailspike.net",
        "barracudacentral.org",
        "local",
        "localhost",
        "internal",
        "localdomain",
    }
)
BURST_NAMES = 10  # distinct encoded names under one domain within the window
BURST_MIN_LEN = 20  # characters of the name below the domain
SINGLE_LABEL_LEN = 52  # a label this long and encoded fires on its own
MAX_DOMAINS = 16  # domains tracked per workload (the least recently active is dropped)


@rule(
    id="dns.tunnelling",
    title="DNS tunnelling: data encoded in DNS look-ups",
    severity=HIGH,
    techniques=["T1071.004", "T1048"],
    classes=[DnsActivity],
    stateful=True,
    window_s=300,
)
def dns_tunnelling(event: DnsActivity, ctx: RuleContext) -> Hit | None:
    """Data moved through DNS look-ups (dnscat2, iodine, DNSExfiltrator...): within five
    minutes, one workload looks up 10 or more distinct names under the same domain whose
    part below the domain is long (20+ characters) and encoded (high entropy: hex, base32,
    base64-like; words, hyphenated names and punycode do not count); or one name with a
    single encoded label of more than 52 characters. AWS names (``*.amazonaws.com``,
    ``*.aws`` such as ACM validation records), CDNs and reputation look-ups
    (DNSBLs, Sophos, Team Cymru) are ignored. Low-and-slow tunnels (under 10 names in five
    minutes) are not caught. State: at most 16 domains of 10 name digests per workload.
    One finding per domain."""
    name = normalise_host(event.query.hostname) if event.query else None
    if not name or "." not in name or suffix_match(name, DNS_TUNNEL_IGNORED):
        return None
    domain = registrable_domain(name)
    if len(name) <= len(domain) + 1:
        return None
    sub = name[: -len(domain) - 1]
    labels = sub.split(".")
    longest = max(labels, key=len)
    if len(longest) > SINGLE_LABEL_LEN and looks_encoded(longest, SINGLE_LABEL_LEN + 1):
        return Hit(
            key=domain,
            summary=f"DNS look-up with a {len(longest)}-character encoded label under {domain}",
            evidence={
                "domain": domain,
                "query": name[:253],
                "label_length": len(longest),
                "entropy": round(shannon_entropy(longest), 2),
            },
        )
    joined = "".join(labels)
    if len(joined) < BURST_MIN_LEN or not looks_encoded(joined, BURST_MIN_LEN):
        return None
    now = ctx.now_ms
    horizon = now - ctx.rule.window_s * 1000
    domains: dict[str, list[list[int]]] = ctx.state.setdefault("d", {})
    for d in list(domains):  # forget what the window has passed
        kept = [e for e in domains[d] if isinstance(e, list) and len(e) == 2 and e[0] >= horizon]
        if kept:
            domains[d] = kept
        else:
            del domains[d]
    seen = domains.setdefault(domain, [])
    digest = zlib.crc32(joined.encode())
    if all(e[1] != digest for e in seen):
        seen.append([now, digest])
    if len(domains) > MAX_DOMAINS:
        stale = min((d for d in domains if d != domain), key=lambda d: domains[d][-1][0])
        del domains[stale]
    if len(seen) < BURST_NAMES:
        return None
    first = min(e[0] for e in seen)
    del domains[domain]  # start counting again: the next burst is the next alert
    return Hit(
        key=domain,
        summary=(
            f"{BURST_NAMES} distinct encoded names under {domain} looked up in "
            f"{(now - first) // 1000} s (last: {name[:120]})"
        ),
        evidence={
            "domain": domain,
            "distinct_names": BURST_NAMES,
            "window_s": ctx.rule.window_s,
            "last_query": name[:253],
            "entropy": round(shannon_entropy(joined), 2),
        },
    )


# -- 5. new destinations of a Lambda function --------------------------------------------------
AWS_ENDPOINT_SUFFIXES = frozenset(
    {
        "amazonaws.com",
        "amazonaws.com.cn",
        "api.aws",
        "amazonaws-us-gov.com",
        "c2s.ic.gov",
        "sc2s.sgov.gov",
    }
)
_LOCAL_NAMES = frozenset({"localhost", "localdomain", "local", "sandbox.localdomain"})


def _skip_host(host: str) -> bool:
    return bool(
        suffix_match(host, AWS_ENDPOINT_SUFFIXES)
        or suffix_match(host, _LOCAL_NAMES)
        or credential_endpoint(host)
        or "." not in host
    )


@rule(
    id="network.new-destination",
    title="Lambda function contacted a destination outside its baseline",
    severity=MEDIUM,
    techniques=["T1071", "T1041"],
    sources=["layer"],
    classes=[NetworkActivity, DnsActivity],
)
def new_destination(event: OcsfEvent, ctx: RuleContext) -> Hit | None:
    """A Lambda function connecting to a destination (host:port, or ip:port when no name
    is known) or looking up a name it never used while its baseline was learnt. While the
    baseline learns, destinations are recorded and nothing fires. Loopback (the Runtime
    API), link-local addresses (the credential endpoints, judged by
    ``network.credential-endpoint``), unix and raw sockets, and AWS service endpoints
    (``*.amazonaws.com``, ``*.api.aws``: judged by the AWS rules) are left out. Baseline
    kinds: ``egress`` and ``dns``. One finding per destination."""
    wl = ctx.workload_key
    if not wl:
        return None
    kind: str
    value: str
    if isinstance(event, DnsActivity):
        host = normalise_host(event.query.hostname) if event.query else None
        if not host or canonical_ip(host) is not None or _skip_host(host):
            return None
        kind, value = "dns", host
    elif isinstance(event, NetworkActivity):
        if not _outbound(event):
            return None
        ip, host, port = _destination(event)
        if ip is None or port is None or is_loopback(ip) or is_link_local(ip):
            return None
        un = event.unmapped or {}
        if un.get("aws_service") or (event.dst_endpoint and event.dst_endpoint.svc_name):
            return None
        if host and _skip_host(host):
            return None
        where = host or (f"[{ip}]" if ":" in ip else ip)
        kind, value = "egress", f"{where}:{port}"
    else:
        return None
    known = ctx.baseline.known(wl, kind, value, ctx.now_ms)
    if known is None:
        ctx.baseline.record(wl, kind, value, ctx.now_ms)
        return None
    if known:
        return None
    return Hit(key=f"{kind}:{value}", evidence={"kind": kind, "destination": value})
