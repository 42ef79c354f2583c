// The Medusa peer of `souk bench purchase --medusa` (docs/BENCHMARKS.md). Medusa's production
// shape on one machine: PostgreSQL for data, Redis for the event bus, the workflow engine, the
// locks and the cache, the admin dashboard off (a storefront benchmark does not use it).
const { defineConfig, Modules } = require("@medusajs/framework/utils")

const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379"

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    redisUrl,
    workerMode: "shared",
    http: {
      storeCors: "*",
      adminCors: "*",
      authCors: "*",
      jwtSecret: "souk-bench",
      cookieSecret: "souk-bench",
    },
  },
  admin: { disable: true },
  // SOUK_BENCH_MEDUSA_MODULES=memory: Medusa's in-process defaults instead (one process only).
  modules: process.env.SOUK_BENCH_MEDUSA_MODULES === "memory" ? [] : [
    { resolve: "@medusajs/medusa/event-bus-redis", options: { redisUrl } },
    { resolve: "@medusajs/medusa/workflow-engine-redis", options: { redis: { redisUrl } } },
    {
      resolve: "@medusajs/medusa/locking",
      options: {
        providers: [{ resolve: "@medusajs/medusa/locking-redis", id: "locking-redis", is_default: true, options: { redisUrl } }],
      },
    },
    { resolve: "@medusajs/medusa/cache-redis", options: { redisUrl } },
  ],
})
