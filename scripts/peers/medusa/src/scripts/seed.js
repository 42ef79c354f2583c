// Seeds what the place-order flow needs and nothing else: a store currency and sales channel,
// a region paid through the system payment provider, a stock location with a shipping option,
// a publishable key, and one published product with one variant. Prints one JSON line with
// the ids the load generator (`souk bench purchase --medusa`) uses.
const { ContainerRegistrationKeys, Modules, ProductStatus } = require("@medusajs/framework/utils")
const {
  createApiKeysWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createSalesChannelsWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  createTaxRegionsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} = require("@medusajs/medusa/core-flows")

exports.default = async function seed({ container }) {
  const link = container.resolve(ContainerRegistrationKeys.LINK)
  const fulfillment = container.resolve(Modules.FULFILLMENT)
  const storeModule = container.resolve(Modules.STORE)
  const country = "dk"

  const { result: [channel] } = await createSalesChannelsWorkflow(container).run({
    input: { salesChannelsData: [{ name: "Bench" }] },
  })
  const [store] = await storeModule.listStores()
  await updateStoresWorkflow(container).run({
    input: {
      selector: { id: store.id },
      update: {
        supported_currencies: [{ currency_code: "usd", is_default: true }],
        default_sales_channel_id: channel.id,
      },
    },
  })
  const { result: [region] } = await createRegionsWorkflow(container).run({
    input: { regions: [{ name: "Bench", currency_code: "usd", countries: [country], payment_providers: ["pp_system_default"] }] },
  })
  await createTaxRegionsWorkflow(container).run({ input: [{ country_code: country, provider_id: "tp_system" }] })

  const { result: [location] } = await createStockLocationsWorkflow(container).run({
    input: { locations: [{ name: "Bench", address: { city: "Copenhagen", country_code: "DK", address_1: "" } }] },
  })
  await link.create({
    [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
    [Modules.FULFILLMENT]: { fulfillment_provider_id: "manual_manual" },
  })
  let [profile] = await fulfillment.listShippingProfiles({ type: "default" })
  if (!profile) {
    ;({ result: [profile] } = await createShippingProfilesWorkflow(container).run({
      input: { data: [{ name: "Default", type: "default" }] },
    }))
  }
  const set = await fulfillment.createFulfillmentSets({
    name: "Bench delivery",
    type: "shipping",
    service_zones: [{ name: "Bench", geo_zones: [{ country_code: country, type: "country" }] }],
  })
  await link.create({
    [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
    [Modules.FULFILLMENT]: { fulfillment_set_id: set.id },
  })
  const { result: [option] } = await createShippingOptionsWorkflow(container).run({
    input: [{
      name: "Standard",
      price_type: "flat",
      provider_id: "manual_manual",
      service_zone_id: set.service_zones[0].id,
      shipping_profile_id: profile.id,
      type: { label: "Standard", description: "Standard", code: "standard" },
      prices: [{ currency_code: "usd", amount: 0 }, { region_id: region.id, amount: 0 }],
      rules: [
        { attribute: "enabled_in_store", value: "true", operator: "eq" },
        { attribute: "is_return", value: "false", operator: "eq" },
      ],
    }],
  })
  await linkSalesChannelsToStockLocationWorkflow(container).run({ input: { id: location.id, add: [channel.id] } })

  const { result: [key] } = await createApiKeysWorkflow(container).run({
    input: { api_keys: [{ title: "Bench", type: "publishable", created_by: "" }] },
  })
  await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: key.id, add: [channel.id] } })

  const { result: [product] } = await createProductsWorkflow(container).run({
    input: {
      products: [{
        title: "Bench plan",
        handle: "bench-plan",
        status: ProductStatus.PUBLISHED,
        shipping_profile_id: profile.id,
        options: [{ title: "Plan", values: ["Monthly"] }],
        variants: [{
          title: "Monthly",
          sku: "BENCH-MONTHLY",
          options: { Plan: "Monthly" },
          manage_inventory: false,
          prices: [{ amount: 2900, currency_code: "usd" }],
        }],
        sales_channels: [{ id: channel.id }],
      }],
    },
  })
  console.log("SOUK_BENCH_MEDUSA " + JSON.stringify({
    publishable_key: key.token,
    region_id: region.id,
    variant_id: product.variants[0].id,
    shipping_option_id: option.id,
  }))
}
