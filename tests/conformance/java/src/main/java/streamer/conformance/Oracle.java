package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Runs the conformance cases in Kafka Streams' TopologyTestDriver and prints what each wrote.
 *
 * <p>Input (a file named by the first argument, or stdin):
 * {"cases": [{"name", "topology", "params", "inputs": [{"topic", "key", "value", "timestamp"}],
 * "outputs": [{"topic", "windowed"}]}]}. Output on stdout: {"results": {name: {"records": [{"topic",
 * "key", "window": [start, end] or null, "value", "timestamp"}]} or {"error": text}}}. Keys are
 * strings, values JSON. One JVM runs every case, each in a fresh driver, because JVM start-up
 * costs more than the cases do.
 */
public final class Oracle {
  private Oracle() {}

  public static void main(String[] args) throws Exception {
    JsonNode document;
    try (InputStream in = args.length > 0 ? Files.newInputStream(Path.of(args[0])) : System.in) {
      document = Json.MAPPER.readTree(in);
    }
    Path stateDir = Files.createTempDirectory("streamer-conformance-");
    ObjectNode results = Json.MAPPER.createObjectNode();
    int index = 0;
    for (JsonNode kase : document.get("cases")) {
      ObjectNode result = results.putObject(kase.get("name").asText());
      try {
        result.set("records", run(kase, stateDir.resolve("case-" + index++)));
      } catch (RuntimeException e) {
        StringWriter trace = new StringWriter();
        e.printStackTrace(new PrintWriter(trace));
        result.put("error", trace.toString());
      }
    }
    deleteTree(stateDir);
    ObjectNode out = Json.MAPPER.createObjectNode();
    out.set("results", results);
    System.out.write(Json.write(out));
    System.out.flush();
  }

  /** Kafka Streams' defaults, except what makes the run deterministic and every update visible. */
  private static Properties config(String applicationId, Path stateDir) {
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    // The record cache off: every update is forwarded, as streamer does (its emit-on-update).
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    // Emit-on-close checks for closed windows at most once per this many wall-clock ms (default
    // 1000); the test driver's clock stands still, so 0 lets every record close what it closes.
    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
    // The same throttle for stream-stream left and outer joins emitting records whose window closed.
    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
    return props;
  }

  private static ArrayNode run(JsonNode kase, Path stateDir) {
    String name = kase.get("name").asText();
    var topology = Topologies.build(kase.get("topology").asText(), kase.path("params"));
    String applicationId = "conformance-" + name.replaceAll("[^A-Za-z0-9._-]", "_");
    ArrayNode records = Json.MAPPER.createArrayNode();
    try (TopologyTestDriver driver = new TopologyTestDriver(topology, config(applicationId, stateDir))) {
      Map<String, TestInputTopic<byte[], byte[]>> inputs = new HashMap<>();
      for (JsonNode input : kase.get("inputs")) {
        TestInputTopic<byte[], byte[]> topic = inputs.computeIfAbsent(input.get("topic").asText(),
            t -> driver.createInputTopic(t, new ByteArraySerializer(), new ByteArraySerializer()));
        topic.pipeInput(new TestRecord<>(bytesOfKey(input.get("key")), bytesOfValue(input.get("value")), null,
            input.get("timestamp").asLong()));
      }
      for (JsonNode output : kase.get("outputs")) {
        String topic = output.get("topic").asText();
        boolean windowed = output.path("windowed").asBoolean(false);
        var out = driver.createOutputTopic(topic, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        for (TestRecord<byte[], byte[]> record : out.readRecordsToList()) {
          records.add(describe(topic, windowed, record));
        }
      }
    }
    return records;
  }

  private static ObjectNode describe(String topic, boolean windowed, TestRecord<byte[], byte[]> record) {
    ObjectNode node = Json.MAPPER.createObjectNode();
    node.put("topic", topic);
    byte[] key = record.key();
    if (windowed) {
      JsonNode windowedKey = read(key);
      node.set("key", windowedKey.get("key"));
      node.putArray("window").add(windowedKey.get("start").asLong()).add(windowedKey.get("end").asLong());
    } else {
      node.put("key", key == null ? null : new String(key, StandardCharsets.UTF_8));
      node.putNull("window");
    }
    node.set("value", record.value() == null ? null : read(record.value()));
    node.put("timestamp", record.timestamp());
    return node;
  }

  private static void deleteTree(Path root) throws java.io.IOException {
    try (var paths = Files.walk(root)) {
      for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    }
  }

  private static JsonNode read(byte[] bytes) {
    try {
      return Json.MAPPER.readTree(bytes);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static byte[] bytesOfKey(JsonNode key) {
    return key == null || key.isNull() ? null : key.asText().getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] bytesOfValue(JsonNode value) {
    return value == null || value.isNull() ? null : Json.write(value);
  }
}
