package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Stream joins with a global table (twins in topologies.py, block "global-table joins"). The
 * global table reads "global-in" (string keys, JSON values, tombstones delete); the stream "in"
 * has values {"g": table key or absent, "n": number} or null. Params: "kind" (inner, left) and
 * "selector": "value" (the table key is the value's "g", null when absent) or "key" ("g" + the
 * stream's key, null for a null key). Kafka Streams calls the selector for a null value too (then
 * drops the record), streamer drops it first; hence the null check. The joiner builds {"n": n, "row":
 * the row or null}.
 */
final class GlobalTableJoins {
  static final String GLOBAL_IN = "global-in";
  private static final Serde<String> STRING = Serdes.String();
  private static final Serde<JsonNode> TREE = Json.tree();

  private GlobalTableJoins() {}

  static void build(StreamsBuilder b, JsonNode params) {
    GlobalKTable<String, JsonNode> table = b.globalTable(GLOBAL_IN, Consumed.with(STRING, TREE),
        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as("global-store")
            .withKeySerde(STRING).withValueSerde(TREE));
    KStream<String, JsonNode> stream = b.stream(Topologies.IN, Consumed.with(STRING, TREE));
    KeyValueMapper<String, JsonNode, String> selector = switch (params.get("selector").asText()) {
      case "value" -> (k, v) -> v != null && v.hasNonNull("g") ? v.get("g").asText() : null;
      case "key" -> (k, v) -> k == null ? null : "g" + k;
      default -> throw new IllegalArgumentException("unknown selector " + params.get("selector"));
    };
    KStream<String, JsonNode> joined = switch (params.get("kind").asText()) {
      case "inner" -> stream.join(table, selector, GlobalTableJoins::joined);
      case "left" -> stream.leftJoin(table, selector, GlobalTableJoins::joined);
      default -> throw new IllegalArgumentException("unknown join kind " + params.get("kind"));
    };
    joined.to(Topologies.OUT, Produced.with(STRING, Json.out()));
  }

  /** The joiner of every case: the record's "n" and the row it met (null if none). */
  private static JsonNode joined(JsonNode value, JsonNode row) {
    ObjectNode node = JsonNodeFactory.instance.objectNode();
    node.set("n", value.get("n"));
    node.set("row", row == null ? JsonNodeFactory.instance.nullNode() : row);
    return node;
  }
}
