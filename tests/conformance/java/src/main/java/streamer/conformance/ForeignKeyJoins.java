package streamer.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Foreign-key table join topologies (twins in topologies.py, block "foreign-key joins"). The left
 * table "table-in" has rows {"fk": "p0".. or null, "n": int}; the right table "table-fk" is keyed by
 * those foreign keys with int values. Joiners build [left, right] (null for a missing right row).
 */
final class ForeignKeyJoins {
  static final String TABLE_FK = "table-fk";

  private static final Serde<String> STRING = Serdes.String();
  private static final Serde<JsonNode> TREE = Json.tree();

  private ForeignKeyJoins() {}

  static void build(StreamsBuilder b, String name) {
    KTable<String, JsonNode> left = table(b, Topologies.TABLE_IN);
    KTable<String, JsonNode> right = table(b, TABLE_FK);
    switch (name) {
      case "fk_join" -> toOut(left.join(right, ForeignKeyJoins::foreignKey, ForeignKeyJoins::pair));
      case "fk_left_join" -> toOut(left.leftJoin(right, ForeignKeyJoins::foreignKey, ForeignKeyJoins::pair));
      case "fk_join_filtered" -> toOut(left.join(right.filter((k, v) -> v.asLong() % 2 == 0),
          ForeignKeyJoins::foreignKey, ForeignKeyJoins::pair));
      case "fk_left_join_aggregate" -> toOut(left
          .leftJoin(right, ForeignKeyJoins::foreignKey, ForeignKeyJoins::pair,
              Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(STRING, TREE))
          .groupBy((k, v) -> KeyValue.pair(v.get(1).isNull() ? "none" : "r" + v.get(1).asLong() % 2,
              v.get(0).get("n")), Grouped.with(STRING, TREE))
          .reduce((agg, v) -> num(agg.asLong() + v.asLong()), (agg, v) -> num(agg.asLong() - v.asLong()),
              Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(STRING, TREE)));
      default -> throw new IllegalArgumentException("unknown foreign-key join topology " + name);
    }
  }

  /** The foreign key extractor: the row's "fk" text, null when it has none. */
  private static String foreignKey(JsonNode value) {
    JsonNode fk = value.path("fk");
    return fk.isTextual() ? fk.asText() : null;
  }

  private static JsonNode pair(JsonNode left, JsonNode right) {
    ArrayNode pair = JsonNodeFactory.instance.arrayNode();
    pair.add(left == null ? JsonNodeFactory.instance.nullNode() : left);
    pair.add(right == null ? JsonNodeFactory.instance.nullNode() : right);
    return pair;
  }

  private static KTable<String, JsonNode> table(StreamsBuilder b, String topic) {
    return b.table(topic, Consumed.with(STRING, TREE),
        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>as(topic + "-store")
            .withKeySerde(STRING).withValueSerde(TREE));
  }

  private static void toOut(KTable<String, JsonNode> table) {
    table.toStream().to(Topologies.OUT, Produced.with(STRING, Json.<JsonNode>out()));
  }

  private static JsonNode num(long n) {
    return JsonNodeFactory.instance.numberNode(n);
  }
}
