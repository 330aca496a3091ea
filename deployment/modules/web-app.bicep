// Where the bot runs: a Linux App Service plan and a web app on Python 3.11 that starts with
// `python app.py`, answers health checks on /readyz (the store answers), and finds every service by endpoint with
// the user-assigned identity (no keys, no passwords). App Service builds the code from
// requirements.txt when it is zip-deployed, and sets PORT for the app to listen on.

@description('Name of the App Service plan.')
param planName string

@description('Name of the web app (globally unique: <name>.azurewebsites.net).')
param appName string

@description('Region of the plan and the web app.')
param location string

@description('Tags for every resource here.')
param tags object

@description('App Service plan size: B1 and up (health checks and Always On need Basic or higher).')
param planSku string

@description('Instances of the plan.')
@minValue(1)
param instanceCount int

@description('Resource id of the user-assigned identity the bot runs as.')
param identityId string

@description('Client id of that identity: the bot\'s Microsoft App ID.')
param identityClientId string

@description('Cosmos DB endpoint, such as https://name.documents.azure.com:443/.')
param cosmosEndpoint string

@description('Cosmos DB database name.')
param cosmosDatabaseName string

@description('Cosmos DB container name.')
param cosmosContainerName string

@description('Days a person\'s memory is kept after their last message.')
param memoryTtlDays int

@description('Azure OpenAI endpoint, such as https://name.openai.azure.com/.')
param openAiEndpoint string

@description('Azure OpenAI chat deployment name.')
param chatDeploymentName string

@description('Azure OpenAI embeddings deployment name; empty when none is deployed.')
param embeddingsDeploymentName string

@description('Azure OpenAI API version the app calls.')
param openAiApiVersion string

@description('Comma-separated Entra tenant ids allowed to use the bot; empty allows any.')
param allowedTenantIds string

@description('Name of the Application Insights component the app sends traces to.')
param appInsightsName string

@description('Resource id of the Log Analytics workspace for the web app\'s logs.')
param workspaceId string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// App settings: every name is one config.py reads, or one that App Service, azure-identity or
// the Azure Monitor exporter reads (tests/deployment checks this). No value is a key or a password.
var coreSettings = [
  {
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'true'
  }
  {
    name: 'MicrosoftAppType'
    value: 'UserAssignedMSI'
  }
  {
    name: 'MicrosoftAppId'
    value: identityClientId
  }
  {
    name: 'MicrosoftAppTenantId'
    value: tenant().tenantId
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'MEMORY_STORE'
    value: 'cosmos'
  }
  {
    name: 'COSMOS_ENDPOINT'
    value: cosmosEndpoint
  }
  {
    name: 'COSMOS_DATABASE'
    value: cosmosDatabaseName
  }
  {
    name: 'COSMOS_CONTAINER'
    value: cosmosContainerName
  }
  {
    name: 'MEMORY_TTL_DAYS'
    value: string(memoryTtlDays)
  }
  {
    name: 'AZURE_OPENAI_ENDPOINT'
    value: openAiEndpoint
  }
  {
    name: 'AZURE_OPENAI_DEPLOYMENT'
    value: chatDeploymentName
  }
  {
    name: 'AZURE_OPENAI_API_VERSION'
    value: openAiApiVersion
  }
  {
    name: 'ALLOWED_TENANT_IDS'
    value: allowedTenantIds
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
]
var embeddingsSettings = empty(embeddingsDeploymentName) ? [] : [
  {
    name: 'AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT'
    value: embeddingsDeploymentName
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy needs a Premium plan and at least three instances; an operator's choice, not a default.
  name: planName
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: planSku
    capacity: instanceCount
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: The Bot Framework Connector presents no client certificate; callers are authenticated by the Bot Framework token.
  // checkov:skip=CKV_AZURE_212: One instance by default to keep the bill small; raise appServiceInstanceCount for failover.
  // checkov:skip=CKV_AZURE_222: Teams reaches the bot through the Bot Framework Connector over the internet, so the messaging endpoint must be public.
  name: appName
  location: location
  tags: tags
  kind: 'app,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'PYTHON|3.11'
      appCommandLine: 'python app.py'
      healthCheckPath: '/readyz'
      alwaysOn: true
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      httpLoggingEnabled: true
      detailedErrorLoggingEnabled: true
      requestTracingEnabled: true
      appSettings: concat(coreSettings, embeddingsSettings)
    }
  }
}

// Publishing with a user name and password is switched off: `az webapp deploy` signs in with
// Entra ID.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Console output (including a start-up configuration error) and HTTP logs, kept in Log Analytics.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'memorybot-logs'
  scope: site
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'AppServiceConsoleLogs'
        enabled: true
      }
      {
        category: 'AppServiceHTTPLogs'
        enabled: true
      }
      {
        category: 'AppServicePlatformLogs'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output id string = site.id
