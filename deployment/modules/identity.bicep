// The bot's only identity: a user-assigned managed identity. Azure Bot authenticates the bot
// with it (msaAppType UserAssignedMSI), and the web app uses it for Cosmos DB and Azure OpenAI.

@description('Name of the managed identity.')
param name string

@description('Region of the managed identity.')
param location string

@description('Tags for the managed identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
