// The model: an Azure OpenAI account (keys switched off), a chat model deployment, optionally an
// embeddings deployment, and the one role the bot's identity needs to call them.

@description('Name of the Azure OpenAI account; also its custom subdomain (globally unique).')
param accountName string

@description('Region of the account: one where the chosen models are offered.')
param location string

@description('Tags for the account.')
param tags object

@description('Chat deployment name: what the app reads as AZURE_OPENAI_DEPLOYMENT.')
param chatDeploymentName string

@description('Chat model name, such as gpt-4o-mini.')
param chatModelName string

@description('Chat model version, such as 2024-07-18.')
param chatModelVersion string

@description('Chat deployment type: GlobalStandard, DataZoneStandard or Standard.')
param chatDeploymentSku string

@description('Chat deployment capacity in thousands of tokens per minute.')
@minValue(1)
param chatDeploymentCapacity int

@description('Deploy an embeddings model too (for memory recall).')
param deployEmbeddings bool

@description('Embeddings deployment name: what the app reads as AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT.')
param embeddingsDeploymentName string

@description('Embeddings model name, such as text-embedding-3-small.')
param embeddingsModelName string

@description('Embeddings model version, such as 1.')
param embeddingsModelVersion string

@description('Embeddings deployment type: Standard or GlobalStandard.')
param embeddingsDeploymentSku string

@description('Embeddings deployment capacity in thousands of tokens per minute.')
@minValue(1)
param embeddingsDeploymentCapacity int

@description('Principal id of the identity that calls the deployments.')
param openAiUserPrincipalId string

// Cognitive Services OpenAI User: call deployments (inference) only; cannot read keys, change
// deployments or fine-tune.
var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_238: The account calls nothing on its own behalf, so it needs no identity of its own; the bot calls it with the bot's user-assigned identity.
  // checkov:skip=CKV_AZURE_134: The web app reaches Azure OpenAI over its public endpoint; every call needs an Entra ID token (local auth is off). A private endpoint needs VNet integration. See deployment/README.md, Hardening.
  name: accountName
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    // Entra ID tokens are accepted only on a custom subdomain endpoint.
    customSubDomainName: accountName
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource chat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: chatDeploymentName
  sku: {
    name: chatDeploymentSku
    capacity: chatDeploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: chatModelName
      version: chatModelVersion
    }
    versionUpgradeOption: 'OnceCurrentVersionExpired'
  }
}

// Deployments on one account are created one at a time: this one waits for the chat deployment.
resource embeddings 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = if (deployEmbeddings) {
  parent: account
  name: embeddingsDeploymentName
  sku: {
    name: embeddingsDeploymentSku
    capacity: embeddingsDeploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: embeddingsModelName
      version: embeddingsModelVersion
    }
    versionUpgradeOption: 'OnceCurrentVersionExpired'
  }
  dependsOn: [
    chat
  ]
}

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, openAiUserPrincipalId, openAiUserRoleId)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAiUserRoleId)
    principalId: openAiUserPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output accountName string = account.name
output endpoint string = account.properties.endpoint
output chatDeploymentName string = chat.name
output embeddingsDeploymentName string = deployEmbeddings ? embeddingsDeploymentName : ''
