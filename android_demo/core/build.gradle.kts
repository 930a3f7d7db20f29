import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// Plain JVM library with no dependencies beyond the Kotlin standard library, so the same code
// runs in the app and in run-tests.sh without an Android SDK.
plugins {
    id("org.jetbrains.kotlin.jvm")
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // The golden vectors the Python, Kotlin and Swift tests share.
    systemProperty("golden.dir", rootDir.resolve("../tests/golden").absolutePath)
}
