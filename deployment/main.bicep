// MemoryBot in one resource group: the bot's managed identity, Azure Bot with the Teams channel,
// a Linux web app on Python 3.11, Cosmos DB for memory, Azure OpenAI for the model, and
// Application Insights for traces. The managed identity is the bot's only identity: no keys,
// no passwords, nothing secret in any setting or output.
//
// Deploy with deployment/deploy.sh (see deployment/README.md), or:
//   az deployment group create -g <group> --template-file deployment/main.bicep \
//     --parameters @deployment/main.parameters.json --parameters namePrefix=<prefix>

targetScope = 'resourceGroup'

@description('Start of every resource name: 3 to 16 lowercase letters, digits or hyphens, starting with a letter.')
@minLength(3)
@maxLength(16)
param namePrefix string

@description('Region for every resource except Azure OpenAI (and Azure Bot, which is global).')
param location string = resourceGroup().location

@description('Region for Azure OpenAI: one where the chat (and embeddings) model is offered.')
param openAiLocation string = location

@description('Tags for every resource.')
param tags object = {
  application: 'memorybot'
}

@description('Name of the bot in the Azure portal.')
param botDisplayName string = 'MemoryBot'

@description('Azure Bot pricing tier. Teams is a standard channel: F0 has no message limit there.')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('App Service plan size for Linux, B1 and up.')
param appServicePlanSku string = 'B1'

@description('Instances of the App Service plan.')
@minValue(1)
@maxValue(30)
param appServiceInstanceCount int = 1

@description('Cosmos DB serverless (pay per request). False gives the database provisioned autoscale throughput.')
param cosmosServerless bool = true

@description('Largest autoscale throughput (RU/s) when cosmosServerless is false.')
@minValue(1000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Cosmos DB database name (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'memorybot'

@description('Cosmos DB container name (COSMOS_CONTAINER).')
param cosmosContainerName string = 'memory'

@description('Days a memory record is kept after the person\'s last message, and an archived message after it was archived (MEMORY_TTL_DAYS; also the container default time to live).')
@minValue(1)
@maxValue(3650)
param memoryTtlDays int = 90

@description('Chat model name.')
param chatModelName string = 'gpt-4o-mini'

@description('Chat model version.')
param chatModelVersion string = '2024-07-18'

@description('Chat deployment name (AZURE_OPENAI_DEPLOYMENT).')
param chatDeploymentName string = chatModelName

@description('Chat deployment type: GlobalStandard, DataZoneStandard or Standard.')
param chatDeploymentSku string = 'GlobalStandard'

@description('Chat deployment capacity, in thousands of tokens per minute.')
@minValue(1)
param chatDeploymentCapacity int = 10

@description('Deploy an embeddings model as well (AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT), for memory recall.')
param deployEmbeddings bool = true

@description('Embeddings model name.')
param embeddingsModelName string = 'text-embedding-3-small'

@description('Embeddings model version.')
param embeddingsModelVersion string = '1'

@description('Cosmos DB full-text search on message texts, which finds old messages in long histories. Set it on the first deployment; to add it to an existing account, enable the account capability first (az cosmosdb update --capabilities EnableNoSQLFullTextSearch, with any it already has) and wait for it to apply. See docs/cosmos.md.')
param cosmosFullTextSearch bool = false

@description('Cosmos DB vector search on embeddings, which finds the closest messages without reading them all. Serverless only. Set it on the first deployment only and keep it, with embeddingsDimensions, on every later one: Cosmos DB cannot add, change or remove a container\'s vector policy. See docs/cosmos.md.')
param cosmosVectorSearch bool = false

@description('Dimensions of the embeddings model\'s vectors (text-embedding-3-small: 1536; text-embedding-3-large: 3072), for cosmosVectorSearch.')
@minValue(1)
@maxValue(4096)
param embeddingsDimensions int = 1536

@description('Embeddings deployment name (AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT).')
param embeddingsDeploymentName string = embeddingsModelName

@description('Embeddings deployment type: Standard or GlobalStandard.')
param embeddingsDeploymentSku string = 'Standard'

@description('Embeddings deployment capacity, in thousands of tokens per minute.')
@minValue(1)
param embeddingsDeploymentCapacity int = 10

@description('Azure OpenAI API version the app calls (AZURE_OPENAI_API_VERSION).')
param openAiApiVersion string = '2024-10-21'

@description('Comma-separated Entra tenant ids allowed to use the bot (ALLOWED_TENANT_IDS). Default: this tenant only.')
param allowedTenantIds string = tenant().tenantId

@description('Days Log Analytics keeps logs and traces.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// Globally unique names from the prefix and this resource group, the same on every run.
var suffix = take(uniqueString(subscription().id, resourceGroup().id, namePrefix), 6)
var baseName = toLower('${namePrefix}-${suffix}')

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${baseName}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${baseName}'
    appInsightsName: 'appi-${baseName}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    accountName: 'cosmos-${baseName}'
    location: location
    tags: tags
    serverless: cosmosServerless
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    databaseName: cosmosDatabaseName
    containerName: cosmosContainerName
    defaultTtlSeconds: memoryTtlDays * 86400
    fullTextSearch: cosmosFullTextSearch
    vectorSearch: cosmosVectorSearch
    embeddingsDimensions: embeddingsDimensions
    dataContributorPrincipalId: identity.outputs.principalId
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  params: {
    accountName: 'oai-${baseName}'
    location: openAiLocation
    tags: tags
    chatDeploymentName: chatDeploymentName
    chatModelName: chatModelName
    chatModelVersion: chatModelVersion
    chatDeploymentSku: chatDeploymentSku
    chatDeploymentCapacity: chatDeploymentCapacity
    deployEmbeddings: deployEmbeddings
    embeddingsDeploymentName: embeddingsDeploymentName
    embeddingsModelName: embeddingsModelName
    embeddingsModelVersion: embeddingsModelVersion
    embeddingsDeploymentSku: embeddingsDeploymentSku
    embeddingsDeploymentCapacity: embeddingsDeploymentCapacity
    openAiUserPrincipalId: identity.outputs.principalId
  }
}

module webApp 'modules/web-app.bicep' = {
  name: 'web-app'
  params: {
    planName: 'plan-${baseName}'
    appName: 'app-${baseName}'
    location: location
    tags: tags
    planSku: appServicePlanSku
    instanceCount: appServiceInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    cosmosContainerName: cosmos.outputs.containerName
    memoryTtlDays: memoryTtlDays
    openAiEndpoint: openAi.outputs.endpoint
    chatDeploymentName: openAi.outputs.chatDeploymentName
    embeddingsDeploymentName: openAi.outputs.embeddingsDeploymentName
    openAiApiVersion: openAiApiVersion
    allowedTenantIds: allowedTenantIds
    appInsightsName: monitoring.outputs.appInsightsName
    workspaceId: monitoring.outputs.workspaceId
  }
}

module bot 'modules/bot.bicep' = {
  name: 'bot'
  params: {
    name: 'bot-${baseName}'
    displayName: botDisplayName
    tags: tags
    sku: botSku
    webAppHostName: webApp.outputs.defaultHostName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
  }
}

// Names and identifiers only: deploy.sh reads these, and the Agents Toolkit writes each to
// env/.env.<environment> upper-cased (botAppId -> BOTAPPID, see m365agents.yml); none is a secret.
output botAppId string = identity.outputs.clientId
output botName string = bot.outputs.name
output messagingEndpoint string = bot.outputs.messagingEndpoint
output webAppName string = webApp.outputs.name
output webAppHostName string = webApp.outputs.defaultHostName
output webAppResourceId string = webApp.outputs.id
output identityName string = identity.outputs.name
output cosmosAccountName string = cosmos.outputs.accountName
output cosmosEndpoint string = cosmos.outputs.endpoint
output openAiAccountName string = openAi.outputs.accountName
output openAiEndpoint string = openAi.outputs.endpoint
output openAiLocation string = openAiLocation
output appInsightsName string = monitoring.outputs.appInsightsName
