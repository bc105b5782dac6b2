/*
 * A librdkafka mock Kafka cluster driven over stdin/stdout, so tests speak the real Kafka
 * protocol (through kafkajs) without a broker installed.
 *
 *   mock-cluster [brokers]
 *
 * Prints `ready <bootstrap servers>` once listening, then answers each command line with `ok`
 * or `error <text>`:
 *   topic <name> <partitions> <replication>
 *   down <brokerId>            up <brokerId>
 *   errors <apiKey> <errcode> [<errcode>...]     clear <apiKey>
 *   rtt <brokerId> <ms>
 *   leader <topic> <partition> <brokerId>
 * Exits when stdin closes: a test process that dies closes the pipe, so no broker outlives it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ERRORS 64

static void reply(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    printf("ok\n");
  else
    printf("error %s\n", rd_kafka_err2str(err));
  fflush(stdout);
}

static void fail(const char *text) {
  printf("error %s\n", text);
  fflush(stdout);
}

/* Parses a whole base-10 integer; rejects trailing garbage so a typo is not read as 0. */
static int parse_long(const char *s, long *out) {
  char *end;
  if (s == NULL) return 0;
  errno = 0;
  *out = strtol(s, &end, 10);
  return errno == 0 && end != s && *end == '\0';
}

int main(int argc, char **argv) {
  long brokers = 3;
  if (argc > 1 && (!parse_long(argv[1], &brokers) || brokers < 1 || brokers > 32)) {
    fprintf(stderr, "mock-cluster: broker count must be 1..32, got %s\n", argv[1]);
    return 2;
  }
#ifdef __linux__
  /* Belt and braces next to the stdin rule: die with the parent even if the pipe leaks. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif

  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The handle only does the cluster's bookkeeping; keep its own chatter off the test output. */
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == NULL) {
    fprintf(stderr, "mock-cluster: rd_kafka_new failed: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
  if (mcluster == NULL) {
    fprintf(stderr, "mock-cluster: rd_kafka_mock_cluster_new failed\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  printf("ready %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
  fflush(stdout);

  char line[4096];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r\n", &save);
    if (cmd == NULL) continue;
    char *a = strtok_r(NULL, " \t\r\n", &save);
    long n1, n2, n3;

    if (strcmp(cmd, "topic") == 0) {
      char *p = strtok_r(NULL, " \t\r\n", &save);
      char *r = strtok_r(NULL, " \t\r\n", &save);
      if (a == NULL || !parse_long(p, &n1) || !parse_long(r, &n2) || n1 < 1 || n2 < 1)
        fail("usage: topic <name> <partitions> <replication>");
      else
        reply(rd_kafka_mock_topic_create(mcluster, a, (int)n1, (int)n2));
    } else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
      if (!parse_long(a, &n1))
        fail("usage: down|up <brokerId>");
      else if (n1 != -1 && (n1 < 1 || n1 > brokers))
        fail("unknown broker id");
      else if (cmd[0] == 'd')
        reply(rd_kafka_mock_broker_set_down(mcluster, (int32_t)n1));
      else
        reply(rd_kafka_mock_broker_set_up(mcluster, (int32_t)n1));
    } else if (strcmp(cmd, "errors") == 0) {
      rd_kafka_resp_err_t errors[MAX_ERRORS];
      size_t cnt = 0;
      int ok = parse_long(a, &n1) && n1 >= 0;
      char *e;
      while (ok && (e = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
        if (cnt == MAX_ERRORS || !parse_long(e, &n2)) ok = 0;
        else errors[cnt++] = (rd_kafka_resp_err_t)n2;
      }
      if (!ok || cnt == 0)
        fail("usage: errors <apiKey> <errcode> [<errcode>...] (at most 64)");
      else {
        rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)n1, cnt, errors);
        reply(RD_KAFKA_RESP_ERR_NO_ERROR);
      }
    } else if (strcmp(cmd, "clear") == 0) {
      if (!parse_long(a, &n1) || n1 < 0)
        fail("usage: clear <apiKey>");
      else {
        rd_kafka_mock_clear_request_errors(mcluster, (int16_t)n1);
        reply(RD_KAFKA_RESP_ERR_NO_ERROR);
      }
    } else if (strcmp(cmd, "rtt") == 0) {
      char *ms = strtok_r(NULL, " \t\r\n", &save);
      if (!parse_long(a, &n1) || !parse_long(ms, &n2) || n2 < 0)
        fail("usage: rtt <brokerId> <ms>");
      else
        reply(rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)n1, (int)n2));
    } else if (strcmp(cmd, "leader") == 0) {
      char *p = strtok_r(NULL, " \t\r\n", &save);
      char *b = strtok_r(NULL, " \t\r\n", &save);
      if (a == NULL || !parse_long(p, &n2) || !parse_long(b, &n3))
        fail("usage: leader <topic> <partition> <brokerId>");
      else
        reply(rd_kafka_mock_partition_set_leader(mcluster, a, (int32_t)n2, (int32_t)n3));
    } else {
      fail("unknown command");
    }
  }

  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  return 0;
}
