import { configureLogging } from "/work/main/util/log.ts";
configureLogging({ level: "debug" });
import "/work/main/tests/roles/validator/cluster.test.ts";
